package event

// Bodies renders the request bodies of one event, each body shape once:
// the endpoints that send the default body (or the same custom body) to
// one event share one encoding, and one slice, which also lets a
// signing.Memo recognise the body. Not safe for concurrent use: the
// dispatcher fills it while routing one event.
type Bodies struct {
	ev     *Event
	shapes []shapeBody // few: one per distinct body expression
}

type shapeBody struct {
	shape string
	body  []byte
	err   error
}

// NewBodies returns the body cache of ev.
func NewBodies(ev *Event) *Bodies { return &Bodies{ev: ev} }

// Reset makes b the body cache of ev, empty, keeping its room: a
// dispatcher renders the events of a batch with one Bodies.
func (b *Bodies) Reset(ev *Event) {
	clear(b.shapes)
	b.ev, b.shapes = ev, b.shapes[:0]
}

// Render returns the body of the given shape ("" for the default body,
// else a key naming the body expression, such as the endpoint id of an
// HCL endpoint with a body), calling render the first time a shape is
// asked for.
func (b *Bodies) Render(shape string, render func(*Event) ([]byte, error)) ([]byte, error) {
	for _, s := range b.shapes {
		if s.shape == shape {
			return s.body, s.err
		}
	}
	body, err := render(b.ev)
	b.shapes = append(b.shapes, shapeBody{shape: shape, body: body, err: err})
	return body, err
}
