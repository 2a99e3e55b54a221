package cdc

import (
	"bytes"
	"errors"
)

// arrayDecoder decodes a Postgres array in text format ("{1,2,NULL}",
// "{{a,b},{c,d}}", "[0:1]={x,y}") into []any of elements decoded by elem,
// nested for multidimensional arrays. Text that does not parse is kept as a
// string.
func arrayDecoder(elem valueDecoder, delim byte) valueDecoder {
	return func(src []byte) any {
		p := arrayParser{src: src, delim: delim, elem: elem}
		if len(src) > 0 && src[0] == '[' { // explicit bounds: [1:2]={...}
			i := bytes.IndexByte(src, '=')
			if i < 0 {
				return string(src)
			}
			p.pos = i + 1
		}
		v, err := p.parseArray()
		if err != nil || p.pos != len(src) {
			return string(src)
		}
		return v
	}
}

var errBadArray = errors.New("malformed array literal")

type arrayParser struct {
	src   []byte
	pos   int
	delim byte
	elem  valueDecoder
	buf   []byte
}

func (p *arrayParser) parseArray() ([]any, error) {
	if p.pos >= len(p.src) || p.src[p.pos] != '{' {
		return nil, errBadArray
	}
	p.pos++
	out := []any{}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return out, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, errBadArray
		}
		switch p.src[p.pos] {
		case '{':
			sub, err := p.parseArray()
			if err != nil {
				return nil, err
			}
			out = append(out, sub)
		case '"':
			s, err := p.quoted()
			if err != nil {
				return nil, err
			}
			out = append(out, p.elem(s))
		default:
			s, isNull, err := p.unquoted()
			if err != nil {
				return nil, err
			}
			if isNull {
				out = append(out, nil)
			} else {
				out = append(out, p.elem(s))
			}
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, errBadArray
		}
		switch c := p.src[p.pos]; {
		case c == p.delim:
			p.pos++
		case c == '}':
			p.pos++
			return out, nil
		default:
			return nil, errBadArray
		}
	}
}

func (p *arrayParser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r', '\v', '\f':
			p.pos++
		default:
			return
		}
	}
}

// quoted reads a double-quoted element, resolving backslash escapes.
func (p *arrayParser) quoted() ([]byte, error) {
	p.pos++ // opening quote
	p.buf = p.buf[:0]
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case '\\':
			if p.pos+1 >= len(p.src) {
				return nil, errBadArray
			}
			p.buf = append(p.buf, p.src[p.pos+1])
			p.pos += 2
		case '"':
			p.pos++
			return p.buf, nil
		default:
			p.buf = append(p.buf, c)
			p.pos++
		}
	}
	return nil, errBadArray
}

// unquoted reads an element up to the delimiter or closing brace; an
// unquoted NULL is SQL NULL.
func (p *arrayParser) unquoted() ([]byte, bool, error) {
	p.buf = p.buf[:0]
	escaped := false
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == p.delim || c == '}' {
			break
		}
		if c == '{' || c == '"' {
			return nil, false, errBadArray
		}
		if c == '\\' {
			if p.pos+1 >= len(p.src) {
				return nil, false, errBadArray
			}
			p.buf = append(p.buf, p.src[p.pos+1])
			p.pos += 2
			escaped = true
			continue
		}
		p.buf = append(p.buf, c)
		p.pos++
	}
	s := bytes.TrimRight(p.buf, " \t\n\r\v\f")
	if len(s) == 0 {
		return nil, false, errBadArray
	}
	return s, !escaped && len(s) == 4 && bytes.EqualFold(s, []byte("NULL")), nil
}
