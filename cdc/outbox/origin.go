package outbox

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Origin names an outbox table across clusters and databases: the
// cluster's system identifier (pg_control_system(), the same as
// IDENTIFY_SYSTEM's), the database's oid and the table's oid (the row's
// tableoid, pgoutput's relation id). With the row id and the row's
// created_at it makes an outbox row's event id (docs/outbox.md, "Event
// ids").
type Origin struct {
	System   uint64
	Database uint32
	Table    uint32
}

// originSQL reads "system_identifier/database oid" of the connection's
// database; every role may run it.
const originSQL = `SELECT s.system_identifier::text || '/' || d.oid::text
	FROM pg_control_system() s, pg_database d WHERE d.datname = current_database()`

// parse reads originSQL's text into o's System and Database.
func (o *Origin) parse(s string) error {
	sys, db, ok := strings.Cut(s, "/")
	var err error
	if ok {
		if o.System, err = strconv.ParseUint(sys, 10, 64); err == nil {
			var d uint64
			d, err = strconv.ParseUint(db, 10, 32)
			o.Database = uint32(d)
		}
	}
	if !ok || err != nil {
		return fmt.Errorf("reading the cluster's system identifier and database oid: unexpected %q", s)
	}
	return nil
}

// ReadDatabaseOrigin reads the system identifier and database oid of the
// database q is connected to (Origin.Table is left zero).
func ReadDatabaseOrigin(ctx context.Context, q querier) (Origin, error) {
	var s string
	if err := q.QueryRow(ctx, originSQL).Scan(&s); err != nil {
		return Origin{}, fmt.Errorf("reading the system identifier and oid of the source database: %w", err)
	}
	var o Origin
	return o, o.parse(s)
}

// ReadOrigin reads the origin of the outbox table ("schema.table") in the
// database q is connected to.
func ReadOrigin(ctx context.Context, q querier, table string) (Origin, error) {
	t, err := ident(table)
	if err != nil {
		return Origin{}, err
	}
	var o Origin
	var s string
	if err := q.QueryRow(ctx, `SELECT (`+originSQL+`), $1::regclass::oid`, t).Scan(&s, &o.Table); err != nil {
		return Origin{}, fmt.Errorf("reading the system identifier, database and oid of outbox table %s: %w", table, err)
	}
	return o, o.parse(s)
}
