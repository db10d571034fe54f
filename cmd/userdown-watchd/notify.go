package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks systemd's notification protocol (sd_notify(3)): one
// datagram of newline-separated KEY=VALUE assignments sent to the
// AF_UNIX socket named by $NOTIFY_SOCKET ("@" for the abstract
// namespace). Without $NOTIFY_SOCKET (no systemd, Type= other than
// notify) every call does nothing.
type notifier struct {
	socket string
}

func newNotifier(getenv func(string) string) notifier {
	return notifier{socket: getenv("NOTIFY_SOCKET")}
}

// send sends one notification such as "READY=1".
func (n notifier) send(state string) error {
	if n.socket == "" {
		return nil
	}
	name := n.socket
	switch {
	case name[0] == '@':
		name = "\x00" + name[1:]
	case name[0] != '/':
		return fmt.Errorf("sd_notify: NOTIFY_SOCKET %q is neither a path nor abstract", n.socket)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// watchdogInterval returns how often to send WATCHDOG=1: half of
// $WATCHDOG_USEC, as sd_watchdog_enabled(3) advises, or 0 when systemd
// does not watch this process ($WATCHDOG_PID names another).
func watchdogInterval(getenv func(string) string) (time.Duration, error) {
	v := getenv("WATCHDOG_USEC")
	if v == "" {
		return 0, nil
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) {
		return 0, nil
	}
	usec, err := strconv.ParseUint(v, 10, 63)
	if err != nil || usec == 0 {
		return 0, errors.New("WATCHDOG_USEC is not a positive number: " + strconv.Quote(v))
	}
	return time.Duration(usec) * time.Microsecond / 2, nil
}
