package deploy_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/config"
)

// keys lists the YAML key paths of a config struct, leaves only
// ("store.redis.addr"); lists of structs are walked as their element
// ("webhooks" is left to its own table).
func keys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		ft := f.Type
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Duration(0)) {
			out = append(out, keys(ft, path+".")...)
			continue
		}
		out = append(out, path)
	}
	return out
}

// tableRows returns, for each row of the markdown tables in doc whose first
// cell is a `key`, its cells.
func tableRows(doc string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[strings.Trim(cells[0], "`")] = cells
	}
	return rows
}

// hasPath reports whether the YAML mapping node holds the key path.
func hasPath(n *yaml.Node, path []string) bool {
	if len(path) == 0 {
		return true
	}
	if n.Kind == yaml.DocumentNode {
		return hasPath(n.Content[0], path)
	}
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == path[0] {
			return hasPath(n.Content[i+1], path[1:])
		}
	}
	return false
}

// Every key of the config file has a row in docs/configuration.md with its
// default and meaning, and is set in examples/regwebhook.yml, the example
// with every key; so is every field of a webhook.
func TestEveryConfigKeyDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := tableRows(string(b))
	b, err = os.ReadFile(filepath.Join(root(t), "examples", "regwebhook.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var example yaml.Node
	if err := yaml.Unmarshal(b, &example); err != nil {
		t.Fatal(err)
	}
	var firstHook yaml.Node
	for i := 0; i+1 < len(example.Content[0].Content); i += 2 {
		if example.Content[0].Content[i].Value == "webhooks" {
			firstHook = *example.Content[0].Content[i+1].Content[0]
		}
	}

	check := func(key string, doc *yaml.Node, path []string) {
		cells, ok := rows[key]
		switch {
		case !ok:
			t.Errorf("docs/configuration.md has no row for %s", key)
		case len(cells) < 3 || cells[1] == "" || cells[2] == "":
			t.Errorf("docs/configuration.md: the row of %s lacks a default or a meaning: %q", key, cells)
		}
		if !hasPath(doc, path) {
			t.Errorf("examples/regwebhook.yml does not show %s", key)
		}
	}
	for _, key := range keys(reflect.TypeOf(config.Config{}), "") {
		if key == "webhooks" {
			continue
		}
		check(key, &example, strings.Split(key, "."))
	}
	for _, key := range keys(reflect.TypeOf(rule.Webhook{}), "") {
		check(key, &firstHook, []string{key})
	}
}
