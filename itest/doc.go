// Package itest runs ganeti-userdown against a real Ganeti 3.0.2 from
// Debian's packages: a single-node and then a two-node cluster brought up
// inside network, UTS and mount namespaces of its own, with xen-pvm backed
// by the project's Xen simulator (testdata/xensim) and ganeti-userdown
// installed on each node from the Debian package `make deb` builds.
//
// The tests need root, the packages ganeti and ganeti-3.0 (and
// openssh-server, socat, fping, iproute2) and the package to install; they
// carry the build tag itest and run with `make itest`:
//
//	go test -tags itest -count=1 -v ./itest/ (ITEST_DEB=path/to.deb)
//
// Each node sees the machine's /usr, /etc, /var and /root through an
// overlay whose upper layer lives on a tmpfs under /run/userdown-itest, and
// a /run and /tmp of its own. So the package is installed with the real
// dpkg -i, maintainer scripts and diversion included, into the node's own
// view of the dpkg database; Ganeti's /var/lib/ganeti, /etc/ganeti,
// /var/log/ganeti, /etc/xen, /run/ganeti and /run/lock are the node's own;
// and the simulator takes the place of Debian's xen-utils-wrapper, the
// target of the diverted xl, on that node only. Nothing is written outside
// the namespaces but the tmpfs, which teardown unmounts, and TestMain
// checks that the machine's own files are as they were.
package itest
