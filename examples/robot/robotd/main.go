// robotd is the runtime binary examples/robot packs onto its base image: a stand-in for a robot's
// controller that reads its configuration and the app directory beside it and reports what it found.
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	conf := "/etc/robot/robot.conf"
	debug := false
	for i := 1; i < len(os.Args); i++ {
		switch os.Args[i] {
		case "--config":
			if i+1 < len(os.Args) {
				conf = os.Args[i+1]
				i++
			}
		case "--debug":
			debug = true
		}
	}
	name, err := robotName(conf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "robotd: %v\n", err)
		os.Exit(1)
	}
	home := os.Getenv("ROBOT_HOME")
	behaviors, _ := filepath.Glob(filepath.Join(home, "app", "behaviors", "*"))
	sort.Strings(behaviors)
	for i, b := range behaviors {
		behaviors[i] = filepath.Base(b)
	}
	fmt.Printf("robotd %s: uid %d, home %s\n", name, os.Getuid(), home)
	fmt.Printf("behaviors: %s\n", strings.Join(behaviors, ", "))
	if debug {
		fmt.Printf("debug: ROBOT_DEBUG=%s\n", os.Getenv("ROBOT_DEBUG"))
	}
}

// robotName reads `name = ...` from the configuration file.
func robotName(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), "=")
		if ok && strings.TrimSpace(k) == "name" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s: no name = ... line", path)
}
