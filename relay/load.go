package relay

import (
	"bytes"
	"fmt"
	"os"

	"github.com/walhook/walhook/internal/config"
)

// Config is a walhook config file, parsed and validated (docs/config.md).
// Build one with LoadConfig and pass it to New.
type Config = config.Config

// LoadConfig reads and validates the config file at path, as
// `walhook validate` does. A mistake in the file is an error listing each
// problem with its file:line:column and a snippet of the source.
func LoadConfig(path string) (*Config, error) {
	cfg, diags := config.Load(path)
	if !diags.HasErrors() {
		return cfg, nil
	}
	src, _ := os.ReadFile(path)
	var b bytes.Buffer
	if err := config.WriteDiagnostics(&b, map[string][]byte{path: src}, diags); err != nil {
		return nil, fmt.Errorf("%s is not valid: %s", path, diags.Error())
	}
	return nil, fmt.Errorf("%s is not valid:\n%s", path, bytes.TrimSpace(b.Bytes()))
}
