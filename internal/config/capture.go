package config

import (
	"fmt"

	"github.com/walhook/walhook/cdc"
)

// TableUses says, for each table of Source.Tables, which operations its
// events want and which events they are (file:line), for the reader's
// publication checks (cdc.ReaderConfig.Uses). The outbox table read
// through the slot wants inserts only.
func (c *Config) TableUses() map[string]cdc.TableUse {
	uses := map[string]cdc.TableUse{}
	add := func(table string, ops []string, by string) {
		u := uses[table]
		for _, op := range ops {
			if !contains(u.Ops, op) {
				u.Ops = append(u.Ops, op)
			}
		}
		u.By = append(u.By, by)
		uses[table] = u
	}
	for _, e := range c.Events {
		if e.Table == "" {
			continue
		}
		by := fmt.Sprintf("event %q", e.Name)
		if r := e.DeclRange; r.Filename != "" {
			by += fmt.Sprintf(" (%s:%d)", r.Filename, r.Start.Line)
		}
		add(e.QualifiedTable(), e.Ops, by)
	}
	if o := c.Source.Outbox; o != nil && o.Table != "" && c.Source.Mode == ModeLogical {
		add(o.Table, []string{"insert"}, "source.outbox")
	}
	return uses
}
