// Package signing signs outgoing webhooks and verifies incoming ones.
//
// Every scheme signs with HMAC-SHA256 and every active secret signs: during
// a secret rotation a receiver holding either the old or the new secret can
// verify the request. Each attempt is signed afresh with the attempt's time.
//
// Wire formats (header names are case-insensitive):
//
//	standard-webhooks (default), https://www.standardwebhooks.com:
//	  webhook-id:        the event id (stable across retries; de-duplicate on it)
//	  webhook-timestamp: unix seconds of the attempt
//	  webhook-signature: "v1,<base64 HMAC(key, id.timestamp.body)>", one per
//	                     secret, space separated, newest secret first
//	  The secret is "whsec_" + base64 of 24 to 64 random bytes; the HMAC key
//	  is the decoded bytes.
//
//	hmac-sha256:
//	  X-Webhook-Signature: hex HMAC(secret, body); header name configurable
//	  X-Webhook-Id, X-Webhook-Event, X-Webhook-Timestamp (unix seconds, not
//	  covered by the signature)
//
//	stripe (Stripe-style, under our own header name):
//	  X-Signature: "t=<unix seconds>,v1=<hex HMAC(secret, t.body)>" with one
//	               v1= per secret; header name configurable (set it to
//	               Stripe-Signature to reuse a Stripe verifier)
//	  X-Webhook-Id, X-Webhook-Event
//
//	github (GitHub-style):
//	  X-Hub-Signature-256: "sha256=<hex HMAC(secret, body)>"; header name
//	                       configurable
//	  X-Webhook-Id, X-Webhook-Event
//
// The single-signature formats (hmac-sha256, github) carry one header line
// per active secret during a rotation, newest first, so a receiver that
// reads only the first line verifies with the newest secret.
//
// For every scheme but standard-webhooks the HMAC key is the secret string's
// bytes exactly as written, "whsec_" prefix included: that is what a
// receiver copying the secret into its own verifier (Stripe's libraries,
// GitHub's examples) uses.
package signing
