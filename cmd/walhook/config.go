package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/walhook/walhook/internal/config"
)

// defaultConfigFile is the config file when -c is not given.
const defaultConfigFile = "walhook.hcl"

// configFile is the path -c/--config names, or the default.
func (a *app) configFile() string {
	if a.configPath == "" {
		return defaultConfigFile
	}
	return a.configPath
}

// existingConfigFile is configFile, or an error saying how to name one
// when it does not exist.
func (a *app) existingConfigFile() (string, error) {
	path := a.configFile()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if a.configPath == "" {
			return "", usageErrorf("no config file: %s is not in this directory; pass -c FILE (or --config FILE)", path)
		}
		return "", fmt.Errorf("config file %s does not exist", path)
	}
	return path, nil
}

// config loads and validates the config file, printing its diagnostics
// on stderr.
func (a *app) config() (*config.Config, error) {
	path, err := a.existingConfigFile()
	if err != nil {
		return nil, err
	}
	cfg, diags := config.Load(path)
	if len(diags) > 0 {
		src, _ := os.ReadFile(path)
		_ = config.WriteDiagnostics(a.stderr, map[string][]byte{path: src}, diags)
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s is not valid; nothing was started", path)
	}
	return cfg, nil
}
