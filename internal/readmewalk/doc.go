// Package readmewalk holds the test that follows the README literally: it
// runs every command block marked <!-- walk --> in order, as a newcomer
// would type them, in a scratch copy of the repository. Blocks extracts
// marked blocks and RunGroup runs them for the other walks too
// (deploy/README.md's operator walk).
package readmewalk

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// RunGroup runs cmd in a process group of its own, its output in a file
// under dir (not a pipe: servers a walk leaves in the background keep
// their output open, and a pipe would wait for them), then stops every
// process of the group, TERM then KILL, so that nothing it started
// outlives it. It returns the output and how cmd ended.
func RunGroup(cmd *exec.Cmd, dir string) ([]byte, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	logFile, err := os.Create(filepath.Join(dir, "walk.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	err = cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		time.Sleep(500 * time.Millisecond)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	out, _ := os.ReadFile(logFile.Name())
	return out, err
}

// Blocks returns the indented command blocks that follow a line
// "<!-- marker -->" in a Markdown text, in order, without their indent.
func Blocks(text, marker string) []string {
	var blocks []string
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "<!-- "+marker+" -->" {
			continue
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		var b []string
		for ; j < len(lines) && (strings.HasPrefix(lines[j], "    ") || strings.TrimSpace(lines[j]) == ""); j++ {
			b = append(b, strings.TrimPrefix(lines[j], "    "))
		}
		blocks = append(blocks, strings.TrimSpace(strings.Join(b, "\n")))
		i = j
	}
	return blocks
}
