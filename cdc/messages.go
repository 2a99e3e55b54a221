package cdc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// message handles one pgoutput message (protocol version 1).
func (s *receiver) message(msg []byte) error {
	if len(msg) == 0 {
		return nil
	}
	switch kind := msg[0]; kind {
	case 'I', 'U', 'D':
		if s.cur == nil {
			return fmt.Errorf("row change outside a transaction")
		}
		c, err := rowChange(kind, msg[1:], s.relations)
		if err != nil {
			return err
		}
		s.cutPiece()
		c.Position = s.piece.base + len(s.cur.Changes)
		s.cur.Changes = append(s.cur.Changes, c)
		s.piece.bytes += len(msg)
		return nil
	case 'B':
		var m pglogrepl.BeginMessage
		if err := decode(&m, "Begin", msg[1:]); err != nil {
			return err
		}
		s.cur = &Transaction{XID: m.Xid, CommitTime: m.CommitTime, CommitLSN: m.FinalLSN}
		s.piece = piecing{}
		return nil
	case 'C':
		var m pglogrepl.CommitMessage
		if err := decode(&m, "Commit", msg[1:]); err != nil {
			return err
		}
		return s.commit(&m)
	case 'R':
		var m pglogrepl.RelationMessage
		if err := decode(&m, "Relation", msg[1:]); err != nil {
			return err
		}
		rel := newRelation(&m, s.types)
		if rel.identity == 'f' || rel.identity == 'n' {
			// Every column is flagged under FULL, none under NOTHING:
			// the primary key says more about which row changed.
			if key, err := s.primaryKey(m.RelationID); err != nil {
				s.r.log.Warn().Err(err).Str("table", rel.schema+"."+rel.table).Msg("looking up primary key; using the replica identity columns")
			} else if len(key) > 0 {
				rel.key = key
			}
		}
		s.relations[m.RelationID] = rel
		return nil
	case 'Y':
		var m pglogrepl.TypeMessage
		if err := decode(&m, "Type", msg[1:]); err != nil {
			return err
		}
		// pgoutput sends a type before the Relation that uses it.
		s.types.names[m.DataType] = m.Name
		return nil
	case 'T':
		if s.cur == nil {
			return fmt.Errorf("truncate outside a transaction")
		}
		// pglogrepl allocates as many relation ids as the message says
		// before reading them: check that they are all there first.
		if len(msg) >= 5 && uint64(binary.BigEndian.Uint32(msg[1:]))*4 > uint64(len(msg)-6) {
			return fmt.Errorf("parsing Truncate: %w", errShortMessage)
		}
		var m pglogrepl.TruncateMessage
		if err := decode(&m, "Truncate", msg[1:]); err != nil {
			return err
		}
		s.cutPiece()
		for _, id := range m.RelationIDs {
			rel, ok := s.relations[id]
			if !ok {
				return fmt.Errorf("truncate of relation %d before its Relation message", id)
			}
			s.cur.Changes = append(s.cur.Changes, Change{
				Schema: rel.schema, Table: rel.table, Relation: id, Op: OpTruncate,
				Columns: rel.names, Key: rel.key, OldFull: rel.identity == 'f',
				Position: s.piece.base + len(s.cur.Changes),
			})
		}
		s.piece.bytes += len(msg)
		return nil
	case 'M':
		return s.decodingMessage(msg[1:])
	case 'O':
		return nil // origins carry no row change
	default:
		return fmt.Errorf("unknown pgoutput message type %q", kind)
	}
}

// decode decodes a pgoutput message with pglogrepl. pglogrepl indexes past
// the end of a truncated Relation, Type or Truncate message (a panic), so
// that panic becomes an error here: bad input from the server must not end
// the process (FuzzMessage checks it).
func decode(m pglogrepl.MessageDecoder, name string, src []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parsing %s: %w (%v)", name, errShortMessage, r)
		}
	}()
	if err := m.Decode(src); err != nil {
		return fmt.Errorf("parsing %s: %w", name, err)
	}
	return nil
}

// piecing follows the transaction being received across its pieces.
type piecing struct {
	// base is how many of its changes earlier pieces carried.
	base int
	// bytes is the size of the change messages of the current piece.
	bytes int
}

// cutPiece is called before a change or a decoding message is added to
// the current transaction: once the piece being received holds
// pieceChanges changes (the config's) or pieceBytes of change messages, it
// is handed over, and the transaction goes on in an empty piece. Positions
// go on counting across pieces. So a piece ends right after a change, a
// message after a piece's last change goes to the next piece, and a
// transaction that ends with a full piece has no empty last piece.
func (s *receiver) cutPiece() {
	tx := s.cur
	if len(tx.Changes) < s.r.cfg.pieceChanges && s.piece.bytes < pieceBytes {
		return
	}
	stamp(tx)
	if e := s.r.log.Debug(); e.Enabled() {
		e.Uint32("xid", tx.XID).Str("commit_lsn", tx.CommitLSN.String()).Int("part", tx.Part).
			Int("changes", len(tx.Changes)).Msg("piece of a transaction received")
	}
	tx.More = true
	s.pending = tx
	s.cur = &Transaction{XID: tx.XID, CommitTime: tx.CommitTime, CommitLSN: tx.CommitLSN, Part: tx.Part + 1}
	s.piece = piecing{base: s.piece.base + len(tx.Changes)}
}

// stamp copies a transaction's (or piece's) identity onto its changes.
func stamp(tx *Transaction) {
	for i := range tx.Changes {
		c := &tx.Changes[i]
		c.XID, c.CommitTime, c.CommitLSN, c.EndLSN = tx.XID, tx.CommitTime, tx.CommitLSN, tx.EndLSN
	}
}

// commit completes the current transaction and queues its last piece
// unless the transaction is already settled or changed nothing we hand
// over. The last piece of a transaction handed over in pieces is always
// queued: it carries the end LSN that settles them.
func (s *receiver) commit(m *pglogrepl.CommitMessage) error {
	tx := s.cur
	s.cur = nil
	if tx == nil {
		return fmt.Errorf("commit at %s outside a transaction", m.CommitLSN)
	}
	tx.CommitLSN, tx.EndLSN, tx.CommitTime = m.CommitLSN, m.TransactionEndLSN, m.CommitTime
	s.r.updateStatus(func(st *Status) {
		st.Received = tx.EndLSN
		st.LastCommitTime = tx.CommitTime
	})
	if tx.Part == 0 && (tx.EndLSN <= s.r.ackedLSN() || (len(tx.Changes) == 0 && len(tx.Messages) == 0)) {
		return nil
	}
	stamp(tx)
	if e := s.r.log.Debug(); e.Enabled() {
		e.Uint32("xid", tx.XID).Str("end_lsn", tx.EndLSN.String()).Int("part", tx.Part).
			Int("changes", s.piece.base+len(tx.Changes)).Msg("transaction received")
	}
	s.pending = tx
	return nil
}

// decodingMessage keeps a transactional logical decoding message whose
// prefix is one of ReaderConfig.MessagePrefixes; it drops the others
// (heartbeats among them) and every non-transactional message.
func (s *receiver) decodingMessage(src []byte) error {
	var m pglogrepl.LogicalDecodingMessage
	if err := m.Decode(src); err != nil {
		return fmt.Errorf("parsing logical decoding message: %w", err)
	}
	if !m.Transactional || s.cur == nil || !slices.Contains(s.r.cfg.MessagePrefixes, m.Prefix) {
		return nil
	}
	s.cutPiece()
	s.cur.Messages = append(s.cur.Messages, Message{
		Prefix:   m.Prefix,
		Content:  bytes.Clone(m.Content),
		LSN:      m.LSN,
		Position: s.piece.base + len(s.cur.Changes),
	})
	return nil
}

// primaryKey returns the primary key columns of a table, in key order.
func (s *receiver) primaryKey(relID uint32) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := s.sql.Query(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = $1 AND i.indisprimary
		ORDER BY array_position(i.indkey::int2[], a.attnum)`, relID)
	if err != nil {
		return nil, fmt.Errorf("querying primary key of relation %d: %w", relID, err)
	}
	key, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("querying primary key of relation %d: %w", relID, err)
	}
	return key, nil
}
