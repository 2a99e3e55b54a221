package cdc

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// TableUse says what reads a published table: the operations its rules
// want and which rules they are. ensurePublication decides from it which
// publication the table can go into without making Postgres refuse the
// application's UPDATE or DELETE (docs/operations.md, "Tables without a
// primary key").
type TableUse struct {
	// Ops are the operations wanted: insert, update, delete, truncate,
	// read (read rows come from a backfill, not from the WAL).
	Ops []string
	// By names what reads the table, for messages:
	// `event "order.created" (walhook.hcl:12)`.
	By []string
}

// wantsOldRows reports whether the rules want updates or deletes from the
// WAL: only then must the table publish them.
func (u TableUse) wantsOldRows() bool {
	return slices.Contains(u.Ops, "update") || slices.Contains(u.Ops, "delete")
}

// InsertsPublication is the name of publication's companion that
// publishes only inserts and truncates: tables without a usable replica
// identity whose rules want no update or delete are captured through it.
func InsertsPublication(publication string) string {
	const suffix = "_inserts"
	name := publication
	for len(name)+len(suffix) > 63 { // NAMEDATALEN-1: Postgres would cut it
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name + suffix
}

// ProblemKind is why a configured table cannot be captured as its rules
// want.
type ProblemKind int

// Kinds of TableProblem.
const (
	// TableMissing: there is no such table.
	TableMissing ProblemKind = iota + 1
	// NoReplicaIdentity: the table (or one of its partitions or children)
	// has no usable replica identity and its rules want updates or
	// deletes, which it would then have to publish.
	NoReplicaIdentity
	// InsertsNotDecodable: the table needs the inserts-only publication,
	// but the slot reads from a position older than that publication.
	InsertsNotDecodable
)

// TableProblem is a configured table walhook refuses to capture: it does
// not exist, or capturing it as its rules want would make Postgres refuse
// the application's UPDATE or DELETE on it.
type TableProblem struct {
	Kind ProblemKind
	// Table is "schema.table" as configured.
	Table string
	// By names the rules that read it (TableUse.By).
	By []string
	// Relation is the table, partition or inheritance child without a
	// usable replica identity, quoted for SQL; Identity is its
	// pg_class.relreplident and HasPrimaryKey whether it has one.
	Relation      string
	Child         bool // Relation is a partition or child of Table
	Identity      byte
	HasPrimaryKey bool
	// Publication is walhook's publication, and InPublication whether it
	// holds the table now (then the application's UPDATE and DELETE on it
	// already fail).
	Publication   string
	InPublication bool
	// UsableFrom is the position after which the slot can decode through
	// the inserts-only publication, and SlotRestart where it reads from
	// now (InsertsNotDecodable).
	UsableFrom, SlotRestart LSN
	Slot                    string
}

// Error says what is wrong with the table and what to do.
func (p TableProblem) Error() string {
	table := p.Table
	if len(p.By) > 0 {
		table += " (read by " + strings.Join(p.By, ", ") + ")"
	}
	inserts := InsertsPublication(p.Publication)
	switch p.Kind {
	case TableMissing:
		return fmt.Sprintf("table %s does not exist: create it, or correct or remove the rules that name it", table)
	case InsertsNotDecodable:
		if p.UsableFrom == 0 {
			return fmt.Sprintf("table %s has no replica identity, so walhook captures its inserts through publication %s, which publishes no update or delete; "+
				"that publication has no comment saying from which position it is usable, and Postgres before 18 cannot decode through a publication newer than the slot's position: "+
				"if it was created before slot %s, its owner runs COMMENT ON PUBLICATION %s IS 'usable from 0/0'; otherwise give the table a primary key or REPLICA IDENTITY FULL",
				table, inserts, p.Slot, pgx.Identifier{inserts}.Sanitize())
		}
		return fmt.Sprintf("table %s has no replica identity, so walhook captures its inserts through publication %s, which publishes no update or delete; "+
			"that publication is usable from LSN %s, but slot %s reads from %s, and Postgres before 18 cannot decode through a publication newer than the slot's position: "+
			"give the table a primary key or REPLICA IDENTITY FULL, or run walhook once without the rules on this table until pg_replication_slots shows restart_lsn past %s, then add them back",
			table, inserts, p.UsableFrom, p.Slot, p.SlotRestart, p.UsableFrom)
	}
	what := "it"
	if p.Child {
		what = "its partition or child table " + p.Relation
	}
	var why string
	switch {
	case p.Identity == 'n':
		why = what + " has REPLICA IDENTITY NOTHING"
	case p.Identity == 'i':
		why = what + " has REPLICA IDENTITY USING INDEX, but that index is gone or not usable (not valid, not unique, deferrable or partial)"
	case p.HasPrimaryKey:
		why = what + "'s primary key cannot identify rows (it is deferrable or its index is not valid)"
	default:
		why = what + " has no primary key"
	}
	msg := fmt.Sprintf("table %s: %s, and Postgres refuses UPDATE and DELETE on a table without a replica identity once a publication publishes them", table, why)
	if p.InPublication {
		msg += fmt.Sprintf(" (publication %s holds it now, so the application's UPDATE and DELETE on it fail already; walhook run takes it out)", p.Publication)
	}
	return msg + fmt.Sprintf(": add a primary key, or run ALTER TABLE %s REPLICA IDENTITY FULL; (or REPLICA IDENTITY USING INDEX on a unique index of NOT NULL columns), "+
		`or restrict its rules to on = ["insert", "truncate", "read"] (walhook then captures its inserts through publication %s, which publishes no update or delete)`,
		p.Relation, inserts)
}

// CaptureError lists the configured tables walhook refuses to capture. It
// wraps ErrPrerequisite: only the database's owner can fix it, so the
// Reader stops on it instead of retrying.
type CaptureError struct {
	Problems []TableProblem
}

func (e *CaptureError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return "cannot capture the configured tables: " + strings.Join(msgs, "; ")
}

// Unwrap makes a CaptureError an ErrPrerequisite.
func (e *CaptureError) Unwrap() error { return ErrPrerequisite }

// capturePlan is which publication each configured table goes into.
type capturePlan struct {
	main, inserts []string // "schema.table", sorted
	problems      []TableProblem
}

// planCapture reads the replica identity of every table of cfg (and of
// its partitions and inheritance children, which a publication of the
// table covers) and puts each into the main publication (usable replica
// identity), the inserts-only one (none, and its rules want no update or
// delete), or a problem.
func planCapture(ctx context.Context, conn *pgx.Conn, cfg ReaderConfig) (capturePlan, error) {
	var plan capturePlan
	held, err := publicationMembers(ctx, conn, cfg.Publication)
	if err != nil {
		return plan, err
	}
	for _, t := range cfg.Tables {
		schema, table, err := splitTable(t)
		if err != nil {
			return plan, err
		}
		qualified := schema + "." + table
		use, known := cfg.Uses[qualified]
		if !known {
			use = TableUse{Ops: []string{"insert", "update", "delete", "truncate"}}
		}
		rels, err := readIdentities(ctx, conn, schema, table)
		if err != nil {
			return plan, err
		}
		if len(rels) == 0 {
			plan.problems = append(plan.problems, TableProblem{Kind: TableMissing, Table: qualified, By: use.By, Publication: cfg.Publication})
			continue
		}
		bad := slices.IndexFunc(rels, func(r relIdentity) bool { return !r.usable })
		switch {
		case bad < 0:
			plan.main = append(plan.main, qualified)
		case !use.wantsOldRows():
			plan.inserts = append(plan.inserts, qualified)
		default:
			r := rels[bad]
			plan.problems = append(plan.problems, TableProblem{Kind: NoReplicaIdentity, Table: qualified, By: use.By,
				Relation: r.name, Child: bad > 0, Identity: r.identity, HasPrimaryKey: r.hasPrimaryKey,
				Publication: cfg.Publication, InPublication: slices.Contains(held, qualified)})
		}
	}
	slices.Sort(plan.main)
	slices.Sort(plan.inserts)
	plan.main, plan.inserts = slices.Compact(plan.main), slices.Compact(plan.inserts)
	return plan, nil
}

// relIdentity is the replica identity of one relation a publication of a
// configured table covers.
type relIdentity struct {
	name          string // quoted schema.table
	identity      byte   // pg_class.relreplident
	hasPrimaryKey bool
	// usable: Postgres accepts UPDATE and DELETE on it when they are
	// published (REPLICA IDENTITY FULL, or an index it can use).
	usable bool
}

// identitySQL reads a table and its descendants (partitions, inheritance
// children) with whether each can be published with updates and deletes:
// the test Postgres makes (RelationGetReplicaIndex: a live, valid, unique,
// immediate, non-partial primary key or replica identity index), or FULL.
// A partitioned table itself holds no rows, only its leaves are checked.
const identitySQL = `
WITH RECURSIVE rels(oid, depth) AS (
	SELECT c.oid, 0 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
	UNION ALL
	SELECT i.inhrelid, rels.depth + 1 FROM pg_inherits i JOIN rels ON i.inhparent = rels.oid
)
SELECT format('%I.%I', n.nspname, c.relname), c.relreplident::text,
       EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisprimary),
       c.relkind <> 'r' OR c.relreplident = 'f' OR EXISTS (
           SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid
              AND x.indislive AND x.indisvalid AND x.indisunique AND x.indimmediate AND x.indpred IS NULL
              AND CASE c.relreplident WHEN 'd' THEN x.indisprimary WHEN 'i' THEN x.indisreplident ELSE false END)
FROM rels JOIN pg_class c ON c.oid = rels.oid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE rels.depth = 0 OR c.relkind IN ('r', 'p')
ORDER BY rels.depth, c.relname`

// readIdentities reads schema.table and its descendants; none when there
// is no such table.
func readIdentities(ctx context.Context, conn *pgx.Conn, schema, table string) ([]relIdentity, error) {
	rows, err := conn.Query(ctx, identitySQL, schema, table)
	if err != nil {
		return nil, fmt.Errorf("reading the replica identity of %s.%s: %w", schema, table, err)
	}
	rels, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (relIdentity, error) {
		var r relIdentity
		var identity string
		err := row.Scan(&r.name, &identity, &r.hasPrimaryKey, &r.usable)
		if identity != "" {
			r.identity = identity[0]
		}
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the replica identity of %s.%s: %w", schema, table, err)
	}
	return rels, nil
}

// publicationMembers lists the tables publication names itself (not the
// partitions it covers through them), as "schema.table", sorted; none
// when there is no such publication.
func publicationMembers(ctx context.Context, q querier, publication string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname || '.' || c.relname
		FROM pg_publication p JOIN pg_publication_rel pr ON pr.prpubid = p.oid
		JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE p.pubname = $1 ORDER BY 1`, publication)
	if err != nil {
		return nil, fmt.Errorf("listing the tables of publication %s: %w", publication, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing the tables of publication %s: %w", publication, err)
	}
	return names, nil
}

// usableFromComment is how walhook records, on the inserts-only
// publication, a position after its creation: a slot whose restart_lsn is
// at or past it decodes every change with a catalog that has the
// publication. Postgres before 18 fails decoding ("publication ... does
// not exist") for a change older than a publication it was asked for.
var usableFromComment = regexp.MustCompile(`usable from ([0-9A-Fa-f]+/[0-9A-Fa-f]+)`)

// insertsDecodable reports whether slot can decode through the inserts
// publication: it exists, its recorded position is known, and the slot
// does not exist yet (it will be created after) or reads from at or past
// it. It also returns the recorded position and the slot's restart_lsn.
func insertsDecodable(ctx context.Context, conn *pgx.Conn, inserts, slot string) (ok bool, from, restart LSN, err error) {
	var comment, restartText *string
	var slotExists bool
	err = conn.QueryRow(ctx, `SELECT obj_description(p.oid, 'pg_publication'),
			(SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $2),
			EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $2)
		FROM pg_publication p WHERE p.pubname = $1`, inserts, slot).Scan(&comment, &restartText, &slotExists)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, 0, 0, nil
	}
	if err != nil {
		return false, 0, 0, fmt.Errorf("reading publication %s and slot %s: %w", inserts, slot, err)
	}
	if comment == nil {
		return false, 0, 0, nil
	}
	m := usableFromComment.FindStringSubmatch(*comment)
	if m == nil {
		return false, 0, 0, nil
	}
	if from, err = pglogrepl.ParseLSN(m[1]); err != nil {
		return false, 0, 0, fmt.Errorf("parsing the position recorded on publication %s: %w", inserts, err)
	}
	if !slotExists {
		return true, from, 0, nil
	}
	if restartText == nil {
		return false, from, 0, nil
	}
	if restart, err = pglogrepl.ParseLSN(*restartText); err != nil {
		return false, from, 0, fmt.Errorf("parsing restart_lsn of slot %s: %w", slot, err)
	}
	return restart >= from, from, restart, nil
}

// publicationNames is pgoutput's publication_names argument: the
// publication, and its inserts-only companion when the slot can decode
// through it. If that cannot be read, the companion is named anyway: a
// publication the slot cannot decode through fails the session loudly,
// while leaving it out would drop its tables' inserts silently.
func (r *Reader) publicationNames(ctx context.Context, conn *pgx.Conn) string {
	inserts := InsertsPublication(r.cfg.Publication)
	names := pgx.Identifier{r.cfg.Publication}.Sanitize()
	ok, _, _, err := insertsDecodable(ctx, conn, inserts, r.cfg.Slot)
	if err != nil {
		r.log.Warn().Err(err).Msg("checking the inserts-only publication; naming it to pgoutput anyway")
	}
	if ok || err != nil {
		names += "," + pgx.Identifier{inserts}.Sanitize()
	}
	return "'" + strings.ReplaceAll(names, "'", "''") + "'"
}

// CheckCapture reports, changing nothing, the tables of cfg that Prepare
// would refuse (see ensurePublication): missing, without a replica
// identity while their rules want updates or deletes, or needing the
// inserts-only publication while the slot cannot decode through it yet.
func CheckCapture(ctx context.Context, conn *pgx.Conn, cfg ReaderConfig) ([]TableProblem, error) {
	plan, err := planCapture(ctx, conn, cfg)
	if err != nil || len(plan.problems) > 0 || len(plan.inserts) == 0 {
		return plan.problems, err
	}
	inserts := InsertsPublication(cfg.Publication)
	var pubExists bool
	var restartText, current *string
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1),
			(SELECT coalesce(restart_lsn::text, '0/0') FROM pg_replication_slots WHERE slot_name = $2),
			pg_current_wal_insert_lsn()::text`, inserts, cfg.Slot).Scan(&pubExists, &restartText, &current)
	if err != nil {
		return nil, fmt.Errorf("reading publication %s and slot %s: %w", inserts, cfg.Slot, err)
	}
	var ok bool
	var from, restart LSN
	switch {
	case restartText == nil: // no slot yet: it will be created after the publication
		return nil, nil
	case pubExists:
		if ok, from, restart, err = insertsDecodable(ctx, conn, inserts, cfg.Slot); err != nil || ok {
			return nil, err
		}
	default: // Prepare would create it now
		if from, err = pglogrepl.ParseLSN(*current); err != nil {
			return nil, fmt.Errorf("parsing the WAL position: %w", err)
		}
		if restart, err = pglogrepl.ParseLSN(*restartText); err != nil {
			return nil, fmt.Errorf("parsing restart_lsn of slot %s: %w", cfg.Slot, err)
		}
	}
	return notDecodable(cfg, plan.inserts, from, restart), nil
}

// notDecodable is the problem of each of tables, which need the
// inserts-only publication, usable from from while cfg's slot reads from
// restart.
func notDecodable(cfg ReaderConfig, tables []string, from, restart LSN) []TableProblem {
	problems := make([]TableProblem, len(tables))
	for i, t := range tables {
		problems[i] = TableProblem{Kind: InsertsNotDecodable, Table: t, By: cfg.Uses[t].By, Publication: cfg.Publication,
			UsableFrom: from, SlotRestart: restart, Slot: cfg.Slot}
	}
	return problems
}
