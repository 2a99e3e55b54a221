package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/store"
)

// instanceStatus is one walhook instance as registered in the state
// schema (docs/architecture.md, "Membership"), as the admin API shows it.
type instanceStatus = admin.InstanceView

// listInstances reads the instances list.
func listInstances(ctx context.Context, st *store.Store) ([]instanceStatus, error) {
	ins, err := st.Instances(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]instanceStatus, len(ins))
	for i, in := range ins {
		out[i] = admin.ViewInstance(in)
	}
	return out, nil
}

// printInstances prints the instances list, one line each.
func printInstances(w io.Writer, ins []instanceStatus) {
	if len(ins) == 0 {
		fmt.Fprintln(w, "instances: none running")
		return
	}
	alive := 0
	for _, in := range ins {
		if in.State == "alive" {
			alive++
		}
	}
	fmt.Fprintf(w, "instances: %d alive", alive)
	if dead := len(ins) - alive; dead > 0 {
		fmt.Fprintf(w, ", %d dead", dead)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tHOST\tPID\tVERSION\tROLE\tSTATE\tHEARTBEAT\tIN FLIGHT\tRETRIES\tATTEMPTS/S")
	for _, in := range ins {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\t%s ago\t%d\t%d\t%.1f\n", in.ID, in.Host, in.PID, in.Version, in.Role, in.State,
			time.Duration(in.HeartbeatAgeSeconds*float64(time.Second)).Round(time.Second), in.InFlight, in.RetriesInFlight, in.AttemptsPerSecond)
	}
	tw.Flush()
}
