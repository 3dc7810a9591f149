// Package readmewalk holds the test that follows the README literally: it
// runs every command block marked <!-- walk --> in order, as a newcomer
// would type them, in a scratch copy of the repository. Blocks extracts
// marked blocks for the other walks (deploy/README.md's operator walk).
package readmewalk

import "strings"

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
