/*
 * The route table of peerlink's native TURN data path: see relay_routes.h.
 */
#include "relay_routes.h"
#include <stdlib.h>
#include <string.h>

#define MAX_ROUTES (1u << 22)

/* ---------- addresses and hashing ---------- */

static uint32_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return (uint32_t)h;
}

static uint32_t hash_addr(const void *sock, const struct sockaddr *a, uint32_t extra) {
  uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)sock;
  const uint64_t p = 1099511628211ULL;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *s = (const struct sockaddr_in *)a;
    h = (h ^ s->sin_addr.s_addr) * p;
    h = (h ^ s->sin_port) * p;
  } else {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
    uint32_t w[4];
    memcpy(w, &s->sin6_addr, 16);
    for (int i = 0; i < 4; i++) h = (h ^ w[i]) * p;
    h = (h ^ s->sin6_port) * p;
  }
  h = (h ^ extra) * p;
  return mix(h);
}

static int addr_eq(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family) return 0;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

int relay_routes_parse_addr(const char *host, int port, struct sockaddr_storage *out) {
  memset(out, 0, sizeof(*out));
  if (port < 0 || port > 65535) return -1;
  if (strchr(host, ':') != NULL) return uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0 ? 0 : -1;
  return uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0 ? 0 : -1;
}

/* ---------- route tables ---------- */

static int table_init(route_table_t *t) {
  t->mask = 255;
  t->count = 0;
  t->buckets = calloc(t->mask + 1, sizeof(route_t *));
  return t->buckets == NULL ? -1 : 0;
}

int relay_routes_init(relay_routes_t *t) {
  return table_init(&t->by_client) != 0 || table_init(&t->by_peer) != 0 ? -1 : 0;
}

void relay_routes_free(relay_routes_t *t) {
  free(t->by_id);
  free(t->free_ids);
  free(t->slot_gen);
  free(t->by_client.buckets);
  free(t->by_peer.buckets);
}

static uint32_t client_hash(const route_t *r) {
  return hash_addr(r->listener, (const struct sockaddr *)&r->client, r->channel);
}

static uint32_t peer_hash(const route_t *r) {
  return hash_addr(r->relay, (const struct sockaddr *)&r->peer, 0x10000);
}

static void table_grow(route_table_t *t, int by_client) {
  uint32_t mask = t->mask * 2 + 1;
  route_t **buckets = calloc(mask + 1, sizeof(route_t *));
  if (buckets == NULL) return; /* keep the smaller table: slower, still correct */
  for (uint32_t i = 0; i <= t->mask; i++) {
    route_t *r = t->buckets[i];
    while (r != NULL) {
      route_t *next = by_client ? r->next_by_client : r->next_by_peer;
      uint32_t b = (by_client ? client_hash(r) : peer_hash(r)) & mask;
      if (by_client) {
        r->next_by_client = buckets[b];
      } else {
        r->next_by_peer = buckets[b];
      }
      buckets[b] = r;
      r = next;
    }
  }
  free(t->buckets);
  t->buckets = buckets;
  t->mask = mask;
}

route_t *relay_routes_find_by_client(relay_routes_t *t, const relay_socket_t *listener, const struct sockaddr *client, uint16_t channel) {
  route_t *r = t->by_client.buckets[hash_addr(listener, client, channel) & t->by_client.mask];
  for (; r != NULL; r = r->next_by_client) {
    if (r->listener == listener && r->channel == channel && addr_eq((const struct sockaddr *)&r->client, client)) return r;
  }
  return NULL;
}

route_t *relay_routes_find_by_peer(relay_routes_t *t, const relay_socket_t *relay, const struct sockaddr *peer) {
  route_t *r = t->by_peer.buckets[hash_addr(relay, peer, 0x10000) & t->by_peer.mask];
  for (; r != NULL; r = r->next_by_peer) {
    if (r->relay == relay && addr_eq((const struct sockaddr *)&r->peer, peer)) return r;
  }
  return NULL;
}

void relay_routes_remove(relay_routes_t *t, route_t *r) {
  route_t **p = &t->by_client.buckets[client_hash(r) & t->by_client.mask];
  while (*p != NULL && *p != r) p = &(*p)->next_by_client;
  if (*p == r) *p = r->next_by_client;
  t->by_client.count--;
  p = &t->by_peer.buckets[peer_hash(r) & t->by_peer.mask];
  while (*p != NULL && *p != r) p = &(*p)->next_by_peer;
  if (*p == r) *p = r->next_by_peer;
  t->by_peer.count--;
  if (r->prev_of_relay != NULL) r->prev_of_relay->next_of_relay = r->next_of_relay;
  else r->relay->relay_routes = r->next_of_relay;
  if (r->next_of_relay != NULL) r->next_of_relay->prev_of_relay = r->prev_of_relay;
  t->by_id[r->id - 1] = NULL;
  t->slot_gen[r->id - 1]++;
  t->free_ids[t->free_count++] = r->id;
  free(r);
}

uint32_t relay_routes_add(relay_routes_t *t, route_t *r) {
  route_t *old = relay_routes_find_by_client(t, r->listener, (const struct sockaddr *)&r->client, r->channel);
  if (old != NULL) relay_routes_remove(t, old);
  old = relay_routes_find_by_peer(t, r->relay, (const struct sockaddr *)&r->peer);
  if (old != NULL) relay_routes_remove(t, old);
  uint32_t id;
  if (t->free_count > 0) {
    id = t->free_ids[--t->free_count];
  } else {
    if (t->next_id >= MAX_ROUTES) return 0;
    if (t->next_id == t->cap) {
      uint32_t cap = t->cap == 0 ? 256 : t->cap * 2;
      route_t **by_id = realloc(t->by_id, cap * sizeof(route_t *));
      if (by_id == NULL) return 0;
      t->by_id = by_id;
      uint32_t *free_ids = realloc(t->free_ids, cap * sizeof(uint32_t));
      if (free_ids == NULL) return 0;
      t->free_ids = free_ids;
      uint32_t *slot_gen = realloc(t->slot_gen, cap * sizeof(uint32_t));
      if (slot_gen == NULL) return 0;
      memset(slot_gen + t->cap, 0, (cap - t->cap) * sizeof(uint32_t));
      t->slot_gen = slot_gen;
      t->cap = cap;
    }
    id = ++t->next_id;
  }
  r->id = id;
  t->by_id[id - 1] = r;
  if (t->by_client.count >= t->by_client.mask) table_grow(&t->by_client, 1);
  if (t->by_peer.count >= t->by_peer.mask) table_grow(&t->by_peer, 0);
  uint32_t b = client_hash(r) & t->by_client.mask;
  r->next_by_client = t->by_client.buckets[b];
  t->by_client.buckets[b] = r;
  t->by_client.count++;
  b = peer_hash(r) & t->by_peer.mask;
  r->next_by_peer = t->by_peer.buckets[b];
  t->by_peer.buckets[b] = r;
  t->by_peer.count++;
  r->prev_of_relay = NULL;
  r->next_of_relay = r->relay->relay_routes;
  if (r->next_of_relay != NULL) r->next_of_relay->prev_of_relay = r;
  r->relay->relay_routes = r;
  return id;
}

/* Drops every route that refers to `sock` (it is closing). */
void relay_routes_drop_socket(relay_routes_t *t, relay_socket_t *sock) {
  while (sock->relay_routes != NULL) relay_routes_remove(t, sock->relay_routes);
  for (uint32_t i = 0; i < t->next_id; i++) {
    route_t *r = t->by_id[i];
    if (r != NULL && r->listener == sock) relay_routes_remove(t, r);
  }
}

/* ---------- handles for JavaScript ---------- */

/* A route's handle for JavaScript: its slot and the slot's generation, so that a handle
   kept after its route was dropped (a socket closed) never reaches a later route. */
#define SLOT_SPAN 8388608.0 /* 2^23 > MAX_ROUTES */

double relay_routes_handle(const relay_routes_t *t, uint32_t id) {
  return id == 0 ? 0 : (double)t->slot_gen[id - 1] * SLOT_SPAN + id;
}

route_t *relay_routes_by_handle(relay_routes_t *t, double handle) {
  if (!(handle >= 1) || handle > 4503599627370496.0) return NULL;
  double gen = (double)(uint64_t)(handle / SLOT_SPAN);
  uint32_t id = (uint32_t)(handle - gen * SLOT_SPAN);
  if (id < 1 || id > t->next_id || t->slot_gen[id - 1] != (uint32_t)gen) return NULL;
  return t->by_id[id - 1];
}
