// Package xentest is what tests of ganeti-userdown share about Xen:
// domain states built only through the real parser (xen.ParseState), so
// that no test holds a state the toolstack cannot print, and one
// in-memory toolstack.
package xentest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"ganeti-userdown/internal/xen"
)

// MustState parses six state letters as the flavour's toolstack prints
// them, and panics when they do not parse: for package-level test tables.
func MustState(f xen.Flavour, letters string) xen.State {
	st, err := xen.ParseState(f, letters)
	if err != nil {
		panic(fmt.Sprintf("xentest: %v", err))
	}
	return st
}

// State parses six state letters as the flavour's toolstack prints them,
// failing the test when they do not parse.
func State(t testing.TB, f xen.Flavour, letters string) xen.State {
	t.Helper()
	st, err := xen.ParseState(f, letters)
	if err != nil {
		t.Fatalf("xentest: %v", err)
	}
	return st
}

// Domain returns a domain of the xl toolstack with the state the letters
// describe (MustState).
func Domain(name string, id int, uuid, letters string) xen.Domain {
	return xen.Domain{Name: name, ID: id, UUID: uuid, State: MustState(xen.XL, letters), MemMiB: 512, VCPUs: 1}
}

// Toolstack is a node's toolstack in memory: List, Lookup, Destroy,
// DumpCore and Actions on a table of domains by domid, with a log of the
// calls that change something. It is safe for concurrent use.
type Toolstack struct {
	mu      sync.Mutex
	domains map[int]xen.Domain
	actions map[string]map[string]string
	calls   []string

	// ListErr, LookupErr, DestroyErr and DumpErr, when set, are returned
	// by those calls (which then change nothing).
	ListErr, LookupErr, DestroyErr, DumpErr error
	// OnLookup, when set, runs before each Lookup, so a test can change
	// a domain between a decision and the act.
	OnLookup func(x *Toolstack, domid int)
}

// NewToolstack returns a toolstack holding doms.
func NewToolstack(doms ...xen.Domain) *Toolstack {
	x := &Toolstack{domains: map[int]xen.Domain{}, actions: map[string]map[string]string{}}
	for _, d := range doms {
		x.domains[d.ID] = d
	}
	return x
}

// Set adds d, or replaces the domain with its domid.
func (x *Toolstack) Set(d xen.Domain) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.domains[d.ID] = d
}

// Remove takes the domain with this domid away, as if Xen destroyed it.
func (x *Toolstack) Remove(domid int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.domains, domid)
}

// Get returns the domain with this domid, if there is one.
func (x *Toolstack) Get(domid int) (xen.Domain, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, ok := x.domains[domid]
	return d, ok
}

// SetActions sets the live actions `list -l` reports for the domain name;
// nil takes them away (the domain is then unknown to Actions).
func (x *Toolstack) SetActions(name string, acts map[string]string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if acts == nil {
		delete(x.actions, name)
		return
	}
	x.actions[name] = acts
}

// Calls returns the calls that changed something, in order:
// "destroy DOMID", "dump-core DOMID FILE" (the file's base name).
func (x *Toolstack) Calls() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.calls...)
}

// Destroyed returns the domids destroyed, in order.
func (x *Toolstack) Destroyed() []int {
	x.mu.Lock()
	defer x.mu.Unlock()
	var ids []int
	for _, c := range x.calls {
		var id int
		if _, err := fmt.Sscanf(c, "destroy %d", &id); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// List returns every domain, by domid.
func (x *Toolstack) List(context.Context) ([]xen.Domain, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ListErr != nil {
		return nil, x.ListErr
	}
	out := make([]xen.Domain, 0, len(x.domains))
	for _, d := range x.domains {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Lookup re-reads one domain by domid.
func (x *Toolstack) Lookup(_ context.Context, domid int) (xen.Domain, bool, error) {
	if x.OnLookup != nil {
		x.OnLookup(x, domid)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.LookupErr != nil {
		return xen.Domain{}, false, x.LookupErr
	}
	d, ok := x.domains[domid]
	return d, ok, nil
}

// Destroy removes the domain, failing as xl does when there is none.
func (x *Toolstack) Destroy(_ context.Context, domid int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.DestroyErr != nil {
		return x.DestroyErr
	}
	if _, ok := x.domains[domid]; !ok {
		return fmt.Errorf("destroy domain %d: no such domain", domid)
	}
	delete(x.domains, domid)
	x.calls = append(x.calls, fmt.Sprintf("destroy %d", domid))
	return nil
}

// DumpCore writes a small file where the toolstack would write the core.
func (x *Toolstack) DumpCore(_ context.Context, domid int, path string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.DumpErr != nil {
		return x.DumpErr
	}
	if _, ok := x.domains[domid]; !ok {
		return fmt.Errorf("dump-core domain %d: no such domain", domid)
	}
	x.calls = append(x.calls, fmt.Sprintf("dump-core %d %s", domid, filepath.Base(path)))
	return os.WriteFile(path, []byte("core"), 0o600)
}

// Actions returns the live actions set for the domain name.
func (x *Toolstack) Actions(_ context.Context, name string) (map[string]string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	a, ok := x.actions[name]
	if !ok {
		return nil, fmt.Errorf("list -l %s: domain does not exist", name)
	}
	return a, nil
}
