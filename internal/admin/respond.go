package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBodyBytes caps a request body; larger bodies get 413.
const MaxBodyBytes = 1 << 20

// Error codes of the JSON error body, one per status.
const (
	CodeInvalidRequest   = "invalid_request"        // 400: malformed JSON, unknown field, bad query parameter
	CodeValidation       = "validation_failed"      // 400: a field's value is not acceptable
	CodeURLRefused       = "url_not_allowed"        // 400: the outbound-safety rules refuse the URL
	CodeUnauthorized     = "unauthorized"           // 401
	CodeForbidden        = "forbidden"              // 403: a tenant token or a console session without its CSRF token
	CodeNotFound         = "not_found"              // 404
	CodeMethodNotAllowed = "method_not_allowed"     // 405
	CodeReadOnly         = "read_only"              // 409: config endpoints cannot be changed through the API
	CodeNotReplayable    = "not_replayable"         // 409: a failed evaluation kept no change, or is being replayed
	CodeBodyTooLarge     = "body_too_large"         // 413
	CodeMediaType        = "unsupported_media_type" // 415
	CodeTooManyAttempts  = "too_many_attempts"      // 429: too many wrong tokens from this address
	CodeInternal         = "internal"               // 500
	CodeNotAvailable     = "not_available"          // 501: the feature is not wired in this process
	CodeNotReady         = "not_ready"              // 503
)

// apiError is an error answered as {"error": {"code", "message", "field"}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalid is a 400 validation_failed about one field.
func invalid(field, format string, args ...any) *apiError {
	e := errorf(http.StatusBadRequest, CodeValidation, format, args...)
	e.Field = field
	return e
}

// conflict is the answer when the webhook changed under a PATCH or rotation.
func conflict(id string) *apiError {
	return errorf(http.StatusConflict, "conflict", "webhook %s was changed by another request at the same time; read it again and retry", id)
}

func notFound(what, id string) *apiError {
	return errorf(http.StatusNotFound, CodeNotFound, "%s %q not found", what, id)
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError answers e as the JSON error body.
func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, struct {
		Error *apiError `json:"error"`
	}{e})
}

// hasBody reports whether the request carries a body.
func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// decodeBody reads a JSON object into v: at most MaxBodyBytes, JSON media
// type, no unknown fields, nothing after the object. With optional, an
// empty body leaves v as it is.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) *apiError {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errorf(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "request body is larger than %d bytes", MaxBodyBytes)
		}
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "reading the request body: %v", err)
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		if optional {
			return nil
		}
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "a JSON object is required as the request body")
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		return errorf(http.StatusUnsupportedMediaType, CodeMediaType, "Content-Type must be application/json, not %q", ct)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "unexpected data after the JSON object")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "unexpected data after the JSON object")
	}
	return nil
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// jsonError explains a decoding error in the API's terms.
func jsonError(err error) *apiError {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "malformed JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "the request body must be a JSON object, not %s", typeErr.Value)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		e := errorf(http.StatusBadRequest, CodeInvalidRequest, "field %q must be %s, not %s", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		e.Field = field
		return e
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "malformed JSON: unexpected end of input")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		e := errorf(http.StatusBadRequest, CodeInvalidRequest, "unknown field %q", name)
		e.Field = name
		return e
	}
	return errorf(http.StatusBadRequest, CodeInvalidRequest, "malformed JSON: %v", err)
}

func jsonKind(kind string) string {
	switch kind {
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	case "ptr":
		return "a value of another type"
	}
	return "a number"
}
