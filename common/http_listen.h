#ifndef CRUCIBLE_COMMON_HTTP_LISTEN_H_
#define CRUCIBLE_COMMON_HTTP_LISTEN_H_

#include <httplib.h>
#include <sys/socket.h>

namespace common {

// Makes `http` bind its port exclusively. cpp-httplib's default socket
// options add SO_REUSEPORT, with which a second process binds a port already
// in use and the kernel splits the connections between the two (a second
// engine guard, or metrics endpoint, would start silently); a port in use
// must fail the start instead. SO_REUSEADDR stays, so a restart binds at
// once over connections in TIME_WAIT. Call before binding.
inline void ListenExclusively(httplib::Server& http) {
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
}

}  // namespace common

#endif  // CRUCIBLE_COMMON_HTTP_LISTEN_H_
