{
  "targets": [
    {
      "target_name": "peerlink_udp_relay",
      "sources": ["udp_relay.c", "relay_routes.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "peerlink_record_cipher",
      "sources": ["record_cipher.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
