package envconf

import (
	"fmt"
	"strings"
)

// Rules says in words what a setting allows beyond its help: its values, bounds, and what
// development and production make of it.
func (s Setting) Rules() string {
	var r []string
	if s.OneOf != nil {
		r = append(r, "One of "+strings.Join(s.OneOf, ", ")+".")
	}
	switch {
	case s.Min != "" && s.Max != "":
		r = append(r, fmt.Sprintf("From %s to %s.", s.Min, s.Max))
	case s.Min != "":
		r = append(r, fmt.Sprintf("At least %s.", s.Min))
	}
	if s.Switch {
		r = append(r, "Empty switches it off.")
	}
	switch {
	case s.Required() && s.Secret:
		r = append(r, "Required in production; development falls back on a public development secret.")
	case s.Required():
		r = append(r, fmt.Sprintf("Required in production; development's default is %s.", s.Dev))
	case s.Dev != "":
		r = append(r, fmt.Sprintf("Development's default is %s, which production refuses.", s.Dev))
	}
	return strings.Join(r, " ")
}

// EnvFile renders settings as an environment file: each variable with its help as a comment,
// set to its example value, else its default; a variable whose default depends on APP_ENV is
// left empty, which means that default.
func EnvFile(settings []Setting) string {
	var b strings.Builder
	for _, s := range settings {
		text := s.Help
		if r := s.Rules(); r != "" {
			text += " " + r
		}
		if s.Example != "" {
			text += fmt.Sprintf(" Default: %s; this file sets %s.", s.Default, s.Example)
		}
		for _, line := range wrap(text, 96) {
			b.WriteString("# " + line + "\n")
		}
		value := s.Default
		switch {
		case s.Example != "":
			value = s.Example
		case s.Dev != "":
			value = ""
		}
		b.WriteString(s.Name + "=" + value + "\n")
	}
	return b.String()
}

// Markdown renders settings as a Markdown table.
func Markdown(settings []Setting) string {
	var b strings.Builder
	b.WriteString("| Variable | Default | What it is for |\n|---|---|---|\n")
	for _, s := range settings {
		def := "(none)"
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		text := s.Help
		if r := s.Rules(); r != "" {
			text += " " + r
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Name, def, strings.ReplaceAll(text, "|", `\|`))
	}
	return b.String()
}

// wrap breaks text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// Splice returns doc with the text between the lines begin and end (markers of a generated
// region) replaced by content, or an error when doc lacks them.
func Splice(doc, begin, end, content string) (string, error) {
	i := strings.Index(doc, begin+"\n")
	j := strings.Index(doc, "\n"+end)
	if i < 0 || j < i {
		return "", fmt.Errorf("no region %q ... %q", begin, end)
	}
	return doc[:i+len(begin)+1] + content + doc[j+1:], nil
}
