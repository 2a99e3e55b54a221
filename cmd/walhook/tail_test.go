package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/walhook/walhook/testenv"
)

// TestTailPrintsChangesAndDropsItsSlot runs `walhook tail`, writes a row
// and an update, reads them back as JSON lines, and checks that on Ctrl-C
// tail drops the slot it created.
func TestTailPrintsChangesAndDropsItsSlot(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	slot := testenv.Name(t, "tail")
	cmd := exec.Command(binary(t), "tail", "--url", db.URL, "--tables", "contacts", "--slot", slot, "--publication", slot)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitSlot(t, db, slot)
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name, email) VALUES (3, 'Grace', 'g@example.com')`)
	db.Exec(t, `UPDATE contacts SET email = 'grace@example.com' WHERE first_name = 'Grace'`)

	lines := make(chan map[string]any)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
		close(lines)
	}()
	var got []map[string]any
	deadline := time.After(30 * time.Second)
	for len(got) < 2 {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("tail exited after %d lines", len(got))
			}
			got = append(got, m)
		case <-deadline:
			t.Fatalf("tail printed %d of 2 changes within 30s", len(got))
		}
	}
	if got[0]["op"] != "insert" || got[0]["table"] != "contacts" || got[0]["new"].(map[string]any)["first_name"] != "Grace" {
		t.Errorf("first line = %v", got[0])
	}
	if got[1]["op"] != "update" || got[1]["old"].(map[string]any)["email"] != "g@example.com" || got[1]["new"].(map[string]any)["email"] != "grace@example.com" {
		t.Errorf("second line = %v", got[1])
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("tail exited with %v after SIGINT", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tail did not exit within 30s of SIGINT")
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("tail left its slot %s behind", slot)
	}
}
