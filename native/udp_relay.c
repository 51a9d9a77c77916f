/*
 * peerlink's optional native UDP data path for the TURN server.
 *
 * A TURN server relays each packet with one receive and one send. In JavaScript every
 * packet also costs two crossings between libuv and V8 (the receive callback and the
 * send), which put the reference server at about 2.3x coturn's CPU per relayed packet.
 * This addon keeps the UDP sockets of the TURN data path in C and, for the one case that
 * carries the bulk of relayed traffic, forwards packets without entering JavaScript:
 *
 *   - ChannelData from a UDP client on a bound channel (RFC 8656 §12.6) is sent from the
 *     allocation's relay socket to the bound peer, without its 4-byte header;
 *   - a datagram from a peer to a relay socket, when a channel is bound to the peer's
 *     transport address, is sent to the client as ChannelData (RFC 8656 §12.6;
 *     unpadded, as UDP allows, RFC 8656 §12.5).
 *
 * JavaScript decides everything else and installs a "route" (listener socket, client
 * address, channel, relay socket, peer address, lifetime) once a channel is bound and
 * its permission is in force; it refreshes the lifetime when the binding or permission
 * is refreshed and removes the route when either ends. A packet with no route in force
 * goes to JavaScript unchanged, so the JavaScript path stays the one source of truth for
 * STUN, Send/Data indications, permissions, bandwidth limits and errors.
 *
 * This file holds the data path (receive, relay, delivery to JavaScript) and the
 * JavaScript API; the route table, with the socket and route structs, lives in
 * relay_routes.h and relay_routes.c.
 *
 * All state is per Node.js environment (instance data), so worker threads each get
 * their own. Nothing here allocates per packet.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "relay_routes.h"

#define RECV_BUFFER_BYTES 65536

struct state {
  napi_env env;
  uv_loop_t *loop;
  relay_routes_t routes;
  uint32_t open_sockets; /* created and not yet asked to close */
  char recv_buffer[RECV_BUFFER_BYTES];
};

/* ---------- the data path ---------- */

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  relay_socket_t *sock = handle->data;
  buf->base = sock->state->recv_buffer;
  buf->len = RECV_BUFFER_BYTES;
}

/* Calls the JavaScript function held by `ref` (inside an open handle scope); an exception
   it throws becomes the process's uncaught exception, as for any I/O callback. */
static void call_js(relay_socket_t *sock, napi_ref ref, size_t argc, napi_value *argv) {
  napi_env env = sock->state->env;
  napi_value callback, recv, result;
  if (ref == NULL || napi_get_reference_value(env, ref, &callback) != napi_ok || napi_get_global(env, &recv) != napi_ok) return;
  if (napi_make_callback(env, sock->async, recv, callback, argc, argv, &result) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
}

static void deliver_to_js(relay_socket_t *sock, const char *data, size_t length, const struct sockaddr *from) {
  state_t *s = sock->state;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  char host[INET6_ADDRSTRLEN] = {0};
  int port, family;
  if (from->sa_family == AF_INET) {
    uv_ip4_name((const struct sockaddr_in *)from, host, sizeof(host));
    port = ntohs(((const struct sockaddr_in *)from)->sin_port);
    family = 4;
  } else {
    uv_ip6_name((const struct sockaddr_in6 *)from, host, sizeof(host));
    port = ntohs(((const struct sockaddr_in6 *)from)->sin6_port);
    family = 6;
  }
  napi_value argv[4];
  void *copy;
  if (napi_create_buffer_copy(env, length, data, &copy, &argv[0]) == napi_ok &&
      napi_create_string_latin1(env, host, NAPI_AUTO_LENGTH, &argv[1]) == napi_ok &&
      napi_create_int32(env, port, &argv[2]) == napi_ok && napi_create_int32(env, family, &argv[3]) == napi_ok) {
    call_js(sock, sock->on_message, 4, argv);
  }
  napi_close_handle_scope(env, scope);
}

static void recv_cb(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags) {
  relay_socket_t *sock = handle->data;
  state_t *s = sock->state;
  if (nread <= 0 || from == NULL || sock->closing) return;
  if (flags & UV_UDP_PARTIAL) {
    sock->stats[4]++;
    return;
  }
  const uint8_t *d = (const uint8_t *)buf->base;
  size_t n = (size_t)nread;
  if (s->routes.by_client.count > 0) {
    if (sock->listener) {
      if ((d[0] & 0xc0) != 0x40 || n < 4) goto slow;
      /* RFC 8656 §12.4: channel number, length, then the application data. */
      uint16_t channel = (uint16_t)((d[0] << 8) | d[1]);
      size_t length = (size_t)((d[2] << 8) | d[3]);
      route_t *r = relay_routes_find_by_client(&s->routes, sock, from, channel);
      /* RFC 8656 §12.5: a message shorter than its length field says goes to the slow path (dropped there). */
      if (r != NULL && 4 + length <= n && r->deadline > uv_now(s->loop)) {
        uv_buf_t out = uv_buf_init((char *)d + 4, (unsigned int)length);
        if (uv_udp_try_send(&r->relay->handle, &out, 1, (const struct sockaddr *)&r->peer) >= 0) {
          sock->stats[0]++;
          sock->stats[1] += (double)length;
        } else {
          sock->stats[4]++;
        }
        return;
      }
    } else if (n <= 0xffff) {
      route_t *r = relay_routes_find_by_peer(&s->routes, sock, from);
      if (r != NULL && r->deadline > uv_now(s->loop)) {
        char header[4] = {(char)(r->channel >> 8), (char)(r->channel & 0xff), (char)(n >> 8), (char)(n & 0xff)};
        uv_buf_t out[2] = {uv_buf_init(header, 4), uv_buf_init((char *)d, (unsigned int)n)};
        if (uv_udp_try_send(&r->listener->handle, out, 2, (const struct sockaddr *)&r->client) >= 0) {
          r->listener->stats[2]++;
          r->listener->stats[3] += (double)n;
        } else {
          r->listener->stats[4]++;
        }
        return;
      }
    }
  }
slow:
  deliver_to_js(sock, (const char *)d, n, from);
}

/* ---------- JavaScript API ---------- */

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, "ERR_NATIVE_UDP", "native call failed");  \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static state_t *get_state(napi_env env) {
  state_t *s = NULL;
  napi_get_instance_data(env, (void **)&s);
  return s;
}

static napi_value throw_uv(napi_env env, int err) {
  napi_value message, code, error;
  napi_create_string_utf8(env, uv_strerror(err), NAPI_AUTO_LENGTH, &message);
  napi_create_string_utf8(env, uv_err_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, message, &error);
  napi_set_named_property(env, error, "code", code);
  napi_throw(env, error);
  return NULL;
}

static void socket_free_if_done(relay_socket_t *sock) {
  if (sock->finalized && sock->closed) free(sock);
}

static void socket_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  relay_socket_t *sock = data;
  sock->finalized = 1;
  socket_free_if_done(sock);
}

static relay_socket_t *unwrap_socket(napi_env env, napi_value value) {
  relay_socket_t *sock = NULL;
  napi_get_value_external(env, value, (void **)&sock);
  return sock;
}

/* create(onMessage(buffer, host, port, family), listener: boolean) -> socket */
static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], external, name;
  bool listener = false;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_bool(env, argv[1], &listener));
  state_t *s = get_state(env);
  relay_socket_t *sock = calloc(1, sizeof(relay_socket_t));
  if (sock == NULL || s == NULL) {
    free(sock);
    napi_throw_error(env, "ERR_NATIVE_UDP", "out of memory");
    return NULL;
  }
  sock->state = s;
  sock->listener = listener ? 1 : 0;
  int err = uv_udp_init(s->loop, &sock->handle);
  if (err != 0) {
    free(sock);
    return throw_uv(env, err);
  }
  sock->handle.data = sock;
  s->open_sockets++;
  CHECK(napi_create_reference(env, argv[0], 1, &sock->on_message));
  CHECK(napi_create_string_utf8(env, "peerlink:TurnUdpSocket", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &sock->async));
  CHECK(napi_create_external(env, sock, socket_finalize, NULL, &external));
  return external;
}

/* bind(socket, host, port, bufferBytes) -> bound port */
static napi_value js_bind(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  char host[INET6_ADDRSTRLEN + 1];
  int32_t port, buffer_bytes;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay_socket_t *sock = unwrap_socket(env, argv[0]);
  CHECK(napi_get_value_string_latin1(env, argv[1], host, sizeof(host), NULL));
  CHECK(napi_get_value_int32(env, argv[2], &port));
  CHECK(napi_get_value_int32(env, argv[3], &buffer_bytes));
  if (sock == NULL || sock->closing) return throw_uv(env, UV_EBADF);
  struct sockaddr_storage addr;
  if (relay_routes_parse_addr(host, port, &addr) != 0) return throw_uv(env, UV_EINVAL);
  int err = uv_udp_bind(&sock->handle, (const struct sockaddr *)&addr, addr.ss_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0);
  if (err != 0) return throw_uv(env, err);
  if (buffer_bytes > 0) {
    int value = buffer_bytes;
    uv_recv_buffer_size((uv_handle_t *)&sock->handle, &value);
    value = buffer_bytes;
    uv_send_buffer_size((uv_handle_t *)&sock->handle, &value);
  }
  err = uv_udp_recv_start(&sock->handle, alloc_cb, recv_cb);
  if (err != 0) return throw_uv(env, err);
  struct sockaddr_storage bound;
  int length = sizeof(bound);
  err = uv_udp_getsockname(&sock->handle, (struct sockaddr *)&bound, &length);
  if (err != 0) return throw_uv(env, err);
  int bound_port = bound.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&bound)->sin_port)
                                              : ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
  CHECK(napi_create_int32(env, bound_port, &result));
  return result;
}

typedef struct {
  uv_udp_send_t req;
  char data[];
} queued_send_t;

static void queued_send_done(uv_udp_send_t *req, int status) {
  (void)status;
  free(req);
}

/* send(socket, data, port, host) -> boolean (false: closed, bad address, or the send failed) */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  char host[INET6_ADDRSTRLEN + 1];
  int32_t port;
  void *data;
  size_t length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay_socket_t *sock = unwrap_socket(env, argv[0]);
  int ok = 0;
  if (sock != NULL && !sock->closing &&
      napi_get_typedarray_info(env, argv[1], NULL, &length, &data, NULL, NULL) == napi_ok &&
      napi_get_value_int32(env, argv[2], &port) == napi_ok &&
      napi_get_value_string_latin1(env, argv[3], host, sizeof(host), NULL) == napi_ok) {
    struct sockaddr_storage addr;
    if (relay_routes_parse_addr(host, port, &addr) == 0) {
      uv_buf_t out = uv_buf_init((char *)data, (unsigned int)length);
      int err = uv_udp_try_send(&sock->handle, &out, 1, (const struct sockaddr *)&addr);
      if (err >= 0) {
        ok = 1;
      } else if (err == UV_EAGAIN || err == UV_ENOSYS) {
        /* The kernel buffer is full (or earlier sends are queued): queue a copy. */
        queued_send_t *q = malloc(sizeof(queued_send_t) + length);
        if (q != NULL) {
          memcpy(q->data, data, length);
          out = uv_buf_init(q->data, (unsigned int)length);
          if (uv_udp_send(&q->req, &sock->handle, &out, 1, (const struct sockaddr *)&addr, queued_send_done) == 0) ok = 1;
          else free(q);
        }
      }
    }
  }
  CHECK(napi_get_boolean(env, ok, &result));
  return result;
}

static void close_cb(uv_handle_t *handle) {
  relay_socket_t *sock = handle->data;
  state_t *s = sock->state;
  napi_env env = s->env;
  sock->closed = 1;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    call_js(sock, sock->on_close, 0, NULL);
    napi_close_handle_scope(env, scope);
  }
  if (sock->on_close != NULL) napi_delete_reference(env, sock->on_close);
  napi_delete_reference(env, sock->on_message);
  napi_async_destroy(env, sock->async);
  socket_free_if_done(sock);
}

/* close(socket, onClose) — idempotent; onClose runs once the handle is closed. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay_socket_t *sock = unwrap_socket(env, argv[0]);
  if (sock == NULL || sock->closing) return NULL;
  sock->closing = 1;
  sock->state->open_sockets--;
  relay_routes_drop_socket(&sock->state->routes, sock);
  CHECK(napi_create_reference(env, argv[1], 1, &sock->on_close));
  uv_udp_recv_stop(&sock->handle);
  uv_close((uv_handle_t *)&sock->handle, close_cb);
  return NULL;
}

/* addRoute(listener, clientHost, clientPort, channel, relay, peerHost, peerPort, ttlMs) -> handle (0: refused) */
static napi_value js_add_route(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8], result;
  char client_host[INET6_ADDRSTRLEN + 1], peer_host[INET6_ADDRSTRLEN + 1];
  int32_t client_port, channel, peer_port;
  double ttl;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  state_t *s = get_state(env);
  relay_socket_t *listener = unwrap_socket(env, argv[0]);
  relay_socket_t *relay = unwrap_socket(env, argv[4]);
  CHECK(napi_get_value_string_latin1(env, argv[1], client_host, sizeof(client_host), NULL));
  CHECK(napi_get_value_int32(env, argv[2], &client_port));
  CHECK(napi_get_value_int32(env, argv[3], &channel));
  CHECK(napi_get_value_string_latin1(env, argv[5], peer_host, sizeof(peer_host), NULL));
  CHECK(napi_get_value_int32(env, argv[6], &peer_port));
  CHECK(napi_get_value_double(env, argv[7], &ttl));
  uint32_t id = 0;
  route_t *r = calloc(1, sizeof(route_t));
  if (r != NULL && listener != NULL && relay != NULL && !listener->closing && !relay->closing && listener->listener &&
      !relay->listener &&
      channel >= 0x4000 && channel <= 0x7fff && relay_routes_parse_addr(client_host, client_port, &r->client) == 0 &&
      relay_routes_parse_addr(peer_host, peer_port, &r->peer) == 0) {
    r->listener = listener;
    r->relay = relay;
    r->channel = (uint16_t)channel;
    r->deadline = uv_now(s->loop) + (uint64_t)(ttl > 0 ? ttl : 0);
    id = relay_routes_add(&s->routes, r);
  }
  if (id == 0) free(r);
  CHECK(napi_create_double(env, relay_routes_handle(&s->routes, id), &result));
  return result;
}

/* setRouteTtl(id, ttlMs) */
static napi_value js_set_route_ttl(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  double handle, ttl;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_double(env, argv[0], &handle));
  CHECK(napi_get_value_double(env, argv[1], &ttl));
  state_t *s = get_state(env);
  route_t *r = relay_routes_by_handle(&s->routes, handle);
  if (r != NULL) r->deadline = uv_now(s->loop) + (uint64_t)(ttl > 0 ? ttl : 0);
  return NULL;
}

/* removeRoute(id) */
static napi_value js_remove_route(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double handle;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_double(env, argv[0], &handle));
  state_t *s = get_state(env);
  route_t *r = relay_routes_by_handle(&s->routes, handle);
  if (r != NULL) relay_routes_remove(&s->routes, r);
  return NULL;
}

/* takeStats(socket) -> [packetsToPeers, bytesToPeers, packetsFromPeers, bytesFromPeers, dropped]
   relayed by the fast path through this client-facing socket since the last call. */
static napi_value js_take_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], array, value;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay_socket_t *sock = unwrap_socket(env, argv[0]);
  CHECK(napi_create_array_with_length(env, 5, &array));
  for (uint32_t i = 0; i < 5; i++) {
    CHECK(napi_create_double(env, sock == NULL ? 0 : sock->stats[i], &value));
    CHECK(napi_set_element(env, array, i, value));
    if (sock != NULL) sock->stats[i] = 0;
  }
  return array;
}

/* openSockets() -> sockets created and not yet asked to close in this environment (leak checks) */
static napi_value js_open_sockets(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value value;
  CHECK(napi_create_uint32(env, get_state(env)->open_sockets, &value));
  return value;
}

/* routeCount() -> routes installed in this environment */
static napi_value js_route_count(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value value;
  CHECK(napi_create_uint32(env, get_state(env)->routes.by_client.count, &value));
  return value;
}

static void state_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  state_t *s = data;
  relay_routes_free(&s->routes);
  free(s);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  state_t *s = calloc(1, sizeof(state_t));
  if (s == NULL || relay_routes_init(&s->routes) != 0) return NULL;
  s->env = env;
  if (napi_get_uv_event_loop(env, &s->loop) != napi_ok) return NULL;
  if (napi_set_instance_data(env, s, state_finalize, NULL) != napi_ok) return NULL;
  napi_property_descriptor props[] = {
      {"create", NULL, js_create, NULL, NULL, NULL, napi_default, NULL},
      {"bind", NULL, js_bind, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"addRoute", NULL, js_add_route, NULL, NULL, NULL, napi_default, NULL},
      {"setRouteTtl", NULL, js_set_route_ttl, NULL, NULL, NULL, napi_default, NULL},
      {"removeRoute", NULL, js_remove_route, NULL, NULL, NULL, napi_default, NULL},
      {"takeStats", NULL, js_take_stats, NULL, NULL, NULL, napi_default, NULL},
      {"routeCount", NULL, js_route_count, NULL, NULL, NULL, napi_default, NULL},
      {"openSockets", NULL, js_open_sockets, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}
