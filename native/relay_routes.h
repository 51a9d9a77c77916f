/*
 * The route table of peerlink's native TURN data path (udp_relay.c).
 *
 * A route ties a channel bound by a client on a client-facing ("listener") socket to the
 * allocation's relay socket and the peer's transport address. The table finds a route
 * from either end with one hash lookup: by (listener, client address, channel) for
 * ChannelData from the client, by (relay socket, peer address) for data from the peer.
 * It also hands JavaScript a handle per route (slot and generation).
 *
 * The socket struct lives here too: routes point at sockets, the data path sends through
 * them, and the table keeps each relay socket's list of routes. A relay_routes_t is part
 * of the per-environment state, so worker threads each get their own. Lookups never
 * allocate; adding a route allocates only when the table grows.
 */
#ifndef PEERLINK_RELAY_ROUTES_H
#define PEERLINK_RELAY_ROUTES_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>
#include <stdint.h>

typedef struct relay_socket relay_socket_t;
typedef struct route route_t;
typedef struct state state_t; /* per-environment state, defined in udp_relay.c */

struct route {
  uint32_t id;
  uint16_t channel;
  uint64_t deadline; /* uv_now() milliseconds */
  relay_socket_t *listener;
  relay_socket_t *relay;
  struct sockaddr_storage client;
  struct sockaddr_storage peer;
  route_t *next_by_client;
  route_t *next_by_peer;
  route_t *prev_of_relay;
  route_t *next_of_relay;
};

struct relay_socket {
  uv_udp_t handle;
  state_t *state;
  napi_ref on_message;
  napi_ref on_close;
  napi_async_context async;
  route_t *relay_routes; /* routes whose relay socket this is */
  /* Relayed by the fast path through this (client-facing) socket since the last takeStats():
     to peers: packets, bytes; from peers: packets, bytes; dropped. */
  double stats[5];
  int listener; /* 1: faces clients (ChannelData in), 0: a relay socket (peer data in) */
  int closing;
  int closed;
  int finalized;
};

typedef struct {
  route_t **buckets;
  uint32_t mask;
  uint32_t count;
} route_table_t;

/* The routes of one environment: by id, by client and by peer. */
typedef struct {
  route_t **by_id; /* by id - 1 */
  uint32_t cap;
  uint32_t *free_ids;
  uint32_t *slot_gen; /* by id - 1: bumped when the slot is freed, so stale handles miss */
  uint32_t free_count;
  uint32_t next_id;
  route_table_t by_client;
  route_table_t by_peer;
} relay_routes_t;

/* Sets up an empty (zeroed) table; -1 when out of memory. */
int relay_routes_init(relay_routes_t *t);

/* Frees the table's arrays (not routes still in it). */
void relay_routes_free(relay_routes_t *t);

/* Parses an IPv4 or IPv6 literal and a port into `out`; -1 when either is invalid. */
int relay_routes_parse_addr(const char *host, int port, struct sockaddr_storage *out);

/* The route for ChannelData on `channel` from `client` to `listener`, or NULL. */
route_t *relay_routes_find_by_client(relay_routes_t *t, const relay_socket_t *listener, const struct sockaddr *client, uint16_t channel);

/* The route for data from `peer` to the relay socket `relay`, or NULL. */
route_t *relay_routes_find_by_peer(relay_routes_t *t, const relay_socket_t *relay, const struct sockaddr *peer);

/* Adds `r` (filled in but for its id and links), replacing routes with the same ends; its id, 0 when refused. */
uint32_t relay_routes_add(relay_routes_t *t, route_t *r);

/* Removes `r` from the table and frees it. */
void relay_routes_remove(relay_routes_t *t, route_t *r);

/* Drops every route that refers to `sock` (it is closing). */
void relay_routes_drop_socket(relay_routes_t *t, relay_socket_t *sock);

/* The handle JavaScript gets for the route with id `id` (0 for 0: refused). */
double relay_routes_handle(const relay_routes_t *t, uint32_t id);

/* The route a handle from relay_routes_handle() names, or NULL when it is gone or invalid. */
route_t *relay_routes_by_handle(relay_routes_t *t, double handle);

#endif
