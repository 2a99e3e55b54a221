package cdc

// TextDecoder decodes column values in Postgres text format into the
// values Change documents, exactly as the Reader decodes pgoutput's. Sources
// that capture rows as text (the outbox trigger fallback) use it so their
// changes carry the same values as the slot's. It is not safe for
// concurrent use.
type TextDecoder struct {
	types *typeDecoders
}

// NewTextDecoder returns a TextDecoder that knows the built-in types.
func NewTextDecoder() *TextDecoder { return &TextDecoder{types: newTypeDecoders()} }

// AddType names a type that is not built in (an enum, a domain, or an array
// of one, named "_elem"), as a pgoutput Type message would.
func (d *TextDecoder) AddType(oid uint32, name string) { d.types.names[oid] = name }

// Decode decodes src, the text of a value of type oid. The server session
// that produced src should use the Reader's settings (DateStyle ISO; any
// TimeZone is accepted).
func (d *TextDecoder) Decode(oid uint32, src []byte) any { return d.types.forOID(oid)(src) }
