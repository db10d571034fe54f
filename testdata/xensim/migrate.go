package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Migration between two simulated nodes (each its own XENSIM_STATE), over
// the transport Ganeti 3.0.2 sets up for xl: the target's noded runs
// `socat TCP-LISTEN:... SYSTEM:'xl migrate-receive'` and the source runs
//
//	xl migrate -s 'socat -b524288 - TCP:<target>:<port> #' -C CFG DOM <target>
//
// As xl does, the source runs "<sshcommand> <host> xl migrate-receive"
// through the shell (the '#' turns the tail into a comment), writes the
// domain to its stdin and waits for the target's answer on its stdout.
// The stream is one JSON line (the domain) one way and one line ("ok
// <domid>" or an error) back. While it runs, the source domain is named
// DOM--migratedaway, as with xl; afterwards it is gone (not destroyed:
// the simulator's log records it as "migrated"). The domain keeps its
// UUID and actions; -C replaces the config it restarts from.

// migrationSuffix is what xl appends to the source domain's name while
// it is sent.
const migrationSuffix = "--migratedaway"

// migrate is `xl migrate [-s SSHCMD] [-C CFG] [-e] [--debug] DOM HOST`.
func (s *sim) migrate(args []string) error {
	if s.flavour != flavourXL {
		return fail(1, "xensim: migrate is simulated for xl only\n")
	}
	o, rest, err := s.opts(args, "s:C:eFp", map[string]byte{"debug": 'd'})
	if err != nil {
		return err
	}
	if err := s.needArgs("migrate", rest, 2); err != nil {
		return err
	}
	name, host := rest[0], rest[1]
	var source []byte
	if cfg := o['C']; cfg != "" {
		if source, err = os.ReadFile(cfg); err != nil {
			return fail(1, "Failed to read config file: %s: %v\n", cfg, err)
		}
	}
	// Phase 1: take the domain out of the way under its temporary name.
	var moving domain
	err = s.locked(func(st *state, now time.Time) error {
		d, err := s.find(st, name)
		if err != nil {
			return err
		}
		if d.ID == 0 || !d.alive() {
			return fail(1, "migration sender: domain %s is not running\n", name)
		}
		if source != nil {
			d.Config, d.Source = o['C'], string(source)
		}
		moving = *d
		d.Name = d.Name + migrationSuffix
		s.event("rename", d, now, name)
		return nil
	})
	if err != nil {
		return err
	}
	// Phase 2: the transfer, without the state lock.
	ssh := o['s']
	if ssh == "" {
		ssh = "ssh"
	}
	answer, sendErr := s.send(fmt.Sprintf("%s %s xl migrate-receive", ssh, host), moving)
	// Phase 3: drop the sent domain, or give it its name back.
	return s.locked(func(st *state, now time.Time) error {
		d := st.byName(moving.Name + migrationSuffix)
		if d == nil {
			return fail(1, "migration sender: domain %s%s vanished during the migration\n", moving.Name, migrationSuffix)
		}
		if sendErr != nil {
			d.Name = moving.Name
			s.event("rename", d, now, moving.Name+migrationSuffix)
			return fail(1, "migration sender: %v\nmigration sender: Migration failed.\n", sendErr)
		}
		st.remove(d)
		s.event("migrated", d, now, host+": "+answer)
		fmt.Fprintf(s.stderr, "migration sender: Target reports successful startup.\nMigration successful.\n")
		return nil
	})
}

// send runs the transport command and exchanges the domain for the
// target's answer.
func (s *sim) send(command string, d domain) (string, error) {
	payload, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Stderr = s.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %q: %w", command, err)
	}
	// The input stays open until the answer is in: socat ends the
	// connection half a second after its input closes.
	if _, err := in.Write(append(payload, '\n')); err != nil {
		in.Close()
		cmd.Wait()
		return "", fmt.Errorf("send to %q: %w", command, err)
	}
	line, readErr := bufio.NewReader(out).ReadString('\n')
	in.Close()
	waitErr := cmd.Wait()
	line = strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(line, "ok"):
		return line, nil
	case line != "":
		return "", fmt.Errorf("target: %s", line)
	case readErr != nil:
		return "", fmt.Errorf("no answer from the target (%q: %v, %v)", command, readErr, waitErr)
	}
	return "", fmt.Errorf("no answer from the target (%q)", command)
}

// migrateReceive is `xl migrate-receive`: it reads one domain from stdin,
// starts it under its own name and answers on stdout.
func (s *sim) migrateReceive(args []string) error {
	if _, _, err := s.opts(args, "edFpV", map[string]byte{"debug": 'd'}); err != nil {
		return err
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		fmt.Fprintf(s.stdout, "error: reading the domain: %v\n", err)
		return fail(1, "migration target: reading the domain: %v\n", err)
	}
	var in domain
	if err := json.Unmarshal([]byte(line), &in); err != nil || in.Name == "" {
		fmt.Fprintf(s.stdout, "error: bad domain record\n")
		return fail(1, "migration target: bad domain record: %v\n", err)
	}
	var id int
	err = s.locked(func(st *state, now time.Time) error {
		if st.byName(in.Name) != nil {
			return fail(3, "migration target: Domain with name \"%s\" already exists.\n", in.Name)
		}
		d := s.restart(st, &in, in.Name, in.UUID, now)
		id = d.ID
		s.event("migrate-receive", d, now, "")
		return nil
	})
	if err != nil {
		fmt.Fprintf(s.stdout, "error: %s", strings.TrimSpace(err.Error()))
		fmt.Fprintln(s.stdout)
		return err
	}
	fmt.Fprintf(s.stdout, "ok %d\n", id)
	return nil
}
