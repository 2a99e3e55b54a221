//go:build unix

package sender

import "syscall"

// peekOpen reports whether the socket fd is open with nothing to read,
// without waiting: a read that would block.
func peekOpen(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}
