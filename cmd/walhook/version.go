package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/walhook/walhook/internal/version"
)

func init() { register(newVersionCommand) }

func newVersionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print walhook's version",
		Example: "  walhook version\n  walhook --version",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(a.stdout, "walhook", version.Version)
			return err
		},
	}
}
