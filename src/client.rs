//! A small synchronous HTTP/1.1 client over UNIX and TCP sockets.
