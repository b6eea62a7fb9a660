//! The HTTP control API served in-process on UNIX sockets.
