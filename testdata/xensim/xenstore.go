package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"ganeti-userdown/testdata/xensim/simlog"
	"ganeti-userdown/testdata/xenstored/xswire"
)

// Which of the simulator's events Xen's store daemon hears of. A domain
// that shuts down (whatever the reason: the hypervisor raises
// VIRQ_DOM_EXC) or is destroyed makes xenstored fire @releaseDomain; a
// new domain is introduced to it, firing @introduceDomain.
var (
	releases   = map[string]bool{"poweroff": true, "reboot": true, "suspend": true, "crash": true, "watchdog": true, "soft-reset": true, "destroy": true}
	introduces = map[string]bool{"create": true, "restart": true}
)

// notifyXenstored plays the hypervisor's side of xenstored for the
// events of one state change, already saved: with XENSTORED_PATH naming
// the socket of the xenstored simulator (testdata/xenstored), it sends
// RELEASE <domid> for each domain that shut down or was destroyed and
// INTRODUCE <domid> for each new one, which fire @releaseDomain and
// @introduceDomain to the simulator's watchers. Without XENSTORED_PATH it
// does nothing. A simulator that cannot be reached (stopped, restarting)
// misses the events, as a watcher of a restarting xenstored does; the
// failure is noted in the call log as a "xenstored-missed" event.
func (s *sim) notifyXenstored(events []simlog.Event) {
	path := os.Getenv("XENSTORED_PATH")
	if path == "" {
		return
	}
	var msgs []simlog.Event
	for _, ev := range events {
		if releases[ev.What] || introduces[ev.What] {
			msgs = append(msgs, ev)
		}
	}
	if len(msgs) == 0 {
		return
	}
	err := func() error {
		nc, err := net.DialTimeout("unix", path, 2*time.Second)
		if err != nil {
			return err
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		for i, ev := range msgs {
			typ, body := uint32(xswire.Release), xswire.Strings(strconv.Itoa(ev.Domain.ID))
			if introduces[ev.What] {
				typ, body = xswire.Introduce, xswire.Strings(strconv.Itoa(ev.Domain.ID), "0", "0")
			}
			if err := xswire.Send(nc, typ, uint32(i+1), 0, body); err != nil {
				return err
			}
			reply, err := xswire.Receive(nc)
			if err != nil {
				return err
			}
			if reply.Type == xswire.Error {
				return fmt.Errorf("%s of domain %d: %s", map[uint32]string{xswire.Release: "RELEASE", xswire.Introduce: "INTRODUCE"}[typ], ev.Domain.ID, xswire.Fields(reply.Body))
			}
		}
		return nil
	}()
	if err != nil {
		last := msgs[len(msgs)-1]
		s.events = append(s.events, simlog.Event{Time: time.Now(), What: "xenstored-missed", Domain: last.Domain, Detail: err.Error()})
	}
}
