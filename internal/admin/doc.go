// Package admin is the admin listener's HTTP handler: the JSON API that
// manages API-registered webhooks, reads the delivery log and describes the
// events (catalogue, JSON Schema and example), plus /healthz, /readyz and
// /metrics. docs/api.md is its reference.
//
// Every /v1 route requires "Authorization: Bearer <token>", compared in
// constant time with each configured token. Errors are JSON:
// {"error": {"code": "...", "message": "...", "field": "..."}}, with 400 for
// malformed requests and invalid fields alike (codes invalid_request,
// validation_failed, url_not_allowed), 401, 404, 405, 409 for changes to
// config endpoints, 413, 415, 500, 503 when an event's table cannot be read.
//
// The API only writes the store: running relays reload their routing table
// when the webhooks table changes (a trigger notifies them), and read
// endpoint health (enable) every few seconds.
package admin
