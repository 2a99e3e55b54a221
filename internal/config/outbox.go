package config

// outboxEvents reads the outbox block's events list: the names the
// application may write into the table's event_type, which make the
// outbox's part of the event catalogue (docs/outbox.md, "The event
// catalogue").
func (d *decoder) outboxEvents(cfg *Config, b *outboxBlock) {
	o := cfg.Source.Outbox
	if b == nil || o == nil || !present(b.EventsRange) || d.failed(b.EventsRange) {
		return
	}
	o.EventsRange = b.EventsRange
	if len(b.Events) == 0 {
		d.errorf(b.EventsRange, "No outbox events", "events lists the event names the application writes into the outbox table, like [\"order.paid\", \"order.refunded\"]; leave it out to declare none.")
		return
	}
	blocks := map[string]*Event{}
	for _, e := range cfg.Events {
		blocks[e.Name] = e
	}
	seen := map[string]bool{}
	for _, name := range b.Events {
		switch {
		case !validEventName(name):
			d.errorf(b.EventsRange, "Invalid event name", invalidEventName, name)
			continue
		case seen[name]:
			d.errorf(b.EventsRange, "Duplicate event name", "%q is listed twice in the outbox events.", name)
			continue
		case blocks[name] != nil:
			d.errorf(b.EventsRange, "Duplicate event name", "%q is an outbox event and an event block (at %s): an event comes from the outbox or from a rule, not both.", name, blocks[name].DeclRange)
			continue
		}
		seen[name] = true
		o.Events = append(o.Events, name)
	}
}

// EventNames are the names of every event the config can produce: its
// event blocks', then the outbox's declared events, in config order.
func (c *Config) EventNames() []string {
	names := make([]string, 0, len(c.Events))
	for _, e := range c.Events {
		names = append(names, e.Name)
	}
	if o := c.Source.Outbox; o != nil {
		names = append(names, o.Events...)
	}
	return names
}

// EventTables are the tables the event blocks read ("schema.table"), in
// config order without repeats: those the trigger fallback captures.
func (c *Config) EventTables() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range c.Events {
		if t := e.QualifiedTable(); !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}
