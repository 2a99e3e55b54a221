package store

import (
	"context"
	"fmt"
)

// CapturedTables returns, for slot, the oid each configured table name
// stood for when walhook last captured it.
func (s *Store) CapturedTables(ctx context.Context, slot string) (map[string]uint32, error) {
	rows, err := s.pool.Query(ctx, s.sql(`SELECT table_name, table_oid FROM {s}.captured_tables WHERE slot_name = $1`), slot)
	if err != nil {
		return nil, fmt.Errorf("reading the tables captured through slot %s: %w", slot, err)
	}
	defer rows.Close()
	tables := map[string]uint32{}
	for rows.Next() {
		var name string
		var oid int64
		if err := rows.Scan(&name, &oid); err != nil {
			return nil, fmt.Errorf("reading the tables captured through slot %s: %w", slot, err)
		}
		tables[name] = uint32(oid)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the tables captured through slot %s: %w", slot, err)
	}
	return tables, nil
}

// SaveCapturedTable records that table (a configured name) is captured
// through slot as the table with oid.
func (s *Store) SaveCapturedTable(ctx context.Context, slot, table string, oid uint32) error {
	_, err := s.pool.Exec(ctx, s.sql(`INSERT INTO {s}.captured_tables (slot_name, table_name, table_oid) VALUES ($1, $2, $3)
		ON CONFLICT (slot_name, table_name) DO UPDATE SET table_oid = excluded.table_oid, updated_at = now()`), slot, table, int64(oid))
	if err != nil {
		return fmt.Errorf("recording table %s (oid %d) as captured through slot %s: %w", table, oid, slot, err)
	}
	return nil
}
