/*
 * peerlink's optional native record cipher: AES-256-GCM through the OpenSSL that
 * Node.js itself links (and exports the EVP symbols of), so no library is linked here.
 *
 * node:crypto runs the same OpenSSL code, but per record it creates a Cipher object (an
 * implicit algorithm fetch and a fresh key schedule), allocates a Buffer for every
 * update's output and another for the tag, and the caller copies them into its frame:
 * together about half of OpenSSL's throughput for 64 KiB records. Here a handle keeps one
 * EVP_CIPHER_CTX with the key schedule done once; a record only sets the nonce, encrypts
 * (or decrypts) straight from the caller's buffers into the caller's output buffer and
 * writes (or checks) the tag. Nothing is allocated per call.
 *
 * The nonce is Noise's AESGCM one (Noise §12.4): 4 zero bytes, then a 64-bit big-endian
 * counter, passed as two u32 halves because JavaScript numbers cannot carry 64 bits.
 *
 * Safety: every pointer and length comes from a Uint8Array taken after the last point
 * where JavaScript could run (an element getter of the parts array), so a getter that
 * detaches or shrinks a buffer, or frees the handle, cannot make us write out of bounds
 * or use a freed context. Handles carry a type tag, so another addon's external is
 * refused rather than misread. There is no global mutable state: a handle belongs to the
 * thread (worker) that created it.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_BYTES 32
#define IV_BYTES 12
#define TAG_BYTES 16
/* EVP's lengths are ints: longer inputs go through in slices of this size. */
#define MAX_UPDATE ((size_t)1 << 30)
/* Parts whose elements are read (possibly running getters) before any byte is written:
   with up to this many parts, bad arguments are refused before `out` is touched. */
#define PART_BATCH 32

typedef struct {
  EVP_CIPHER_CTX *ctx; /* NULL once freed */
  bool encrypt;
  bool busy; /* in seal(): a getter of its parts may not start another record on it */
} cipher_t;

static const napi_type_tag CIPHER_TAG = {0x7065657266696e6bULL, 0x6165732d67636d31ULL};

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

static napi_value throw_range(napi_env env, const char *message) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  return NULL;
}

static napi_value throw_openssl(napi_env env) {
  napi_throw_error(env, "ERR_RECORD_CIPHER_OPENSSL", "OpenSSL AES-256-GCM call failed");
  return NULL;
}

#define CHECK(call)                                                            \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      bool pending = false;                                                    \
      napi_is_exception_pending(env, &pending);                                \
      if (!pending) napi_throw_error(env, "ERR_RECORD_CIPHER", "N-API call failed"); \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

/* The bytes of a Uint8Array (Buffers are ones); false when `value` is anything else. */
static bool get_bytes(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_typedarray = false;
  napi_typedarray_type type;
  void *base = NULL;
  if (napi_is_typedarray(env, value, &is_typedarray) != napi_ok || !is_typedarray) return false;
  if (napi_get_typedarray_info(env, value, &type, length, &base, NULL, NULL) != napi_ok) return false;
  if (type != napi_uint8_array) return false;
  *data = base; /* already advanced by the view's byteOffset */
  return true;
}

/* A number that is an integer in [0, max]; throws and returns false otherwise. */
static bool get_index(napi_env env, napi_value value, double max, const char *type_message,
                      const char *range_message, double *result) {
  napi_valuetype t;
  if (napi_typeof(env, value, &t) != napi_ok || t != napi_number) {
    throw_type(env, type_message);
    return false;
  }
  double d = 0;
  napi_get_value_double(env, value, &d);
  /* The negated comparison also refuses NaN. */
  if (!(d >= 0 && d <= max) || (double)(uint64_t)d != d) {
    throw_range(env, range_message);
    return false;
  }
  *result = d;
  return true;
}

/* The live cipher of a handle; throws (and returns NULL) for anything else. */
static cipher_t *get_cipher(napi_env env, napi_value value, bool encrypt) {
  napi_valuetype t;
  bool tagged = false;
  cipher_t *c = NULL;
  if (napi_typeof(env, value, &t) != napi_ok || t != napi_external ||
      napi_check_object_type_tag(env, value, &CIPHER_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, value, (void **)&c) != napi_ok || c == NULL) {
    throw_type(env, "not a record cipher handle");
    return NULL;
  }
  if (c->ctx == NULL) {
    napi_throw_error(env, "ERR_RECORD_CIPHER_FREED", "the record cipher handle was freed");
    return NULL;
  }
  if (c->encrypt != encrypt) {
    throw_type(env, encrypt ? "the handle was created to open, not seal" : "the handle was created to seal, not open");
    return NULL;
  }
  return c;
}

/* Both counter halves as the 12-byte nonce; throws and returns false when out of range. */
static bool get_nonce(napi_env env, napi_value high, napi_value low, uint8_t iv[IV_BYTES]) {
  double h, l;
  if (!get_index(env, high, 4294967295.0, "counterHigh must be a number", "counterHigh must be an integer in [0, 2^32)", &h) ||
      !get_index(env, low, 4294967295.0, "counterLow must be a number", "counterLow must be an integer in [0, 2^32)", &l))
    return false;
  uint32_t hi = (uint32_t)h, lo = (uint32_t)l;
  memset(iv, 0, 4);
  iv[4] = hi >> 24, iv[5] = hi >> 16, iv[6] = hi >> 8, iv[7] = hi;
  iv[8] = lo >> 24, iv[9] = lo >> 16, iv[10] = lo >> 8, iv[11] = lo;
  return true;
}

/* True when the ranges share a byte but do not coincide: in-place is the one overlap
   OpenSSL's GCM supports. */
static bool bad_overlap(const uint8_t *a, const uint8_t *b, size_t length) {
  return length != 0 && a != b && a < b + length && b < a + length;
}

static bool update(EVP_CIPHER_CTX *ctx, bool encrypt, uint8_t *out, const uint8_t *in, size_t length) {
  while (length > 0) {
    int n = (int)(length < MAX_UPDATE ? length : MAX_UPDATE), written = 0;
    int ok = encrypt ? EVP_EncryptUpdate(ctx, out, &written, in, n) : EVP_DecryptUpdate(ctx, out, &written, in, n);
    /* GCM is a stream mode: OpenSSL writes exactly the input length, buffering nothing. */
    if (!ok || written != n) return false;
    out += n, in += n, length -= (size_t)n;
  }
  return true;
}

static void cipher_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  cipher_t *c = data;
  EVP_CIPHER_CTX_free(c->ctx); /* cleanses the key schedule; NULL-safe */
  free(c);
}

/* create(key: Uint8Array(32), encrypt: boolean) -> handle */
static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], external;
  uint8_t *key = NULL;
  size_t key_length = 0;
  bool encrypt = false;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !get_bytes(env, argv[0], &key, &key_length)) return throw_type(env, "key must be a Uint8Array");
  if (key_length != KEY_BYTES) return throw_range(env, "key must be 32 bytes");
  if (napi_get_value_bool(env, argv[1], &encrypt) != napi_ok) return throw_type(env, "encrypt must be a boolean");
  cipher_t *c = calloc(1, sizeof(cipher_t));
  if (c == NULL) {
    napi_throw_error(env, "ERR_RECORD_CIPHER", "out of memory");
    return NULL;
  }
  c->encrypt = encrypt;
  c->ctx = EVP_CIPHER_CTX_new();
  int enc = encrypt ? 1 : 0;
  /* The IV length is set before the key so that OpenSSL never sees a key without it. */
  if (c->ctx == NULL || !EVP_CipherInit_ex(c->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) ||
      !EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_SET_IVLEN, IV_BYTES, NULL) ||
      !EVP_CipherInit_ex(c->ctx, NULL, NULL, key, NULL, enc)) {
    cipher_finalize(env, c, NULL);
    return throw_openssl(env);
  }
  if (napi_create_external(env, c, cipher_finalize, NULL, &external) != napi_ok) {
    cipher_finalize(env, c, NULL);
    napi_throw_error(env, "ERR_RECORD_CIPHER", "N-API call failed");
    return NULL;
  }
  CHECK(napi_type_tag_object(env, external, &CIPHER_TAG));
  return external;
}

/* free(handle): frees the context now rather than at garbage collection; idempotent. */
static napi_value js_free(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t;
  bool tagged = false;
  cipher_t *c = NULL;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_check_object_type_tag(env, argv[0], &CIPHER_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], (void **)&c) != napi_ok || c == NULL)
    return throw_type(env, "not a record cipher handle");
  EVP_CIPHER_CTX_free(c->ctx);
  c->ctx = NULL;
  return NULL;
}

static napi_value seal(napi_env env, napi_value argv[6]) {
  uint8_t iv[IV_BYTES];
  double offset_number;
  if (!get_nonce(env, argv[1], argv[2], iv)) return NULL;
  bool is_array = false;
  uint32_t count = 1;
  CHECK(napi_is_array(env, argv[3], &is_array));
  if (is_array) CHECK(napi_get_array_length(env, argv[3], &count));
  /* 2^53 - 1, or less where size_t is 32 bits, so that the cast below is exact. */
  double max_offset = (double)SIZE_MAX < 9007199254740991.0 ? (double)SIZE_MAX : 9007199254740991.0;
  if (!get_index(env, argv[5], max_offset, "offset must be a number", "offset must be a non-negative integer", &offset_number))
    return NULL;
  size_t offset = (size_t)offset_number, written = 0; /* ciphertext bytes so far */
  bool started = false;
  for (size_t first = 0; first < count || !started; first += PART_BATCH) {
    uint32_t n = count - first < PART_BATCH ? (uint32_t)(count - first) : PART_BATCH;
    napi_value items[PART_BATCH];
    uint8_t *data[PART_BATCH], *out;
    size_t length[PART_BATCH], out_length;
    for (uint32_t k = 0; k < n; k++) {
      if (is_array) CHECK(napi_get_element(env, argv[3], (uint32_t)first + k, &items[k])); /* may run JavaScript */
      else items[k] = argv[3];
    }
    /* From here to the end of the batch no JavaScript runs: the pointers stay valid. */
    cipher_t *c = get_cipher(env, argv[0], true);
    if (c == NULL) return NULL;
    if (!get_bytes(env, argv[4], &out, &out_length)) return throw_type(env, "out must be a Uint8Array");
    /* Checked again for every batch: a getter may have shrunk or detached `out`. */
    if (offset > out_length || out_length - offset < TAG_BYTES || out_length - offset - TAG_BYTES < written)
      return throw_range(env, "out has no room for the record at offset");
    size_t room = out_length - offset - TAG_BYTES, end = written;
    for (uint32_t k = 0; k < n; k++) {
      if (!get_bytes(env, items[k], &data[k], &length[k])) return throw_type(env, "parts must be Uint8Arrays");
      if (length[k] > room - end) return throw_range(env, "out has no room for the record at offset");
      if (bad_overlap(data[k], out + offset + end, length[k])) return throw_range(env, "a part overlaps its own ciphertext in out without being in place");
      end += length[k];
    }
    if (!started) {
      if (!EVP_EncryptInit_ex(c->ctx, NULL, NULL, NULL, iv)) return throw_openssl(env);
      started = true;
    }
    for (uint32_t k = 0; k < n; k++) {
      if (!update(c->ctx, true, out + offset + written, data[k], length[k])) return throw_openssl(env);
      written += length[k];
    }
    if (first + n >= count) {
      int final_length = 0;
      if (!EVP_EncryptFinal_ex(c->ctx, out + offset + written, &final_length) || final_length != 0 ||
          !EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, out + offset + written))
        return throw_openssl(env);
      break;
    }
  }
  return NULL;
}

/* seal(handle, counterHigh, counterLow, parts: Uint8Array[] | Uint8Array, out, offset) */
static napi_value js_seal(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return throw_type(env, "seal takes 6 arguments");
  cipher_t *c = get_cipher(env, argv[0], true);
  if (c == NULL) return NULL;
  if (c->busy) {
    napi_throw_error(env, "ERR_RECORD_CIPHER_BUSY", "seal() called from inside seal() on the same handle");
    return NULL;
  }
  c->busy = true;
  napi_value result = seal(env, argv);
  c->busy = false; /* `c` outlives the call: argv[0] keeps the external alive */
  return result;
}

/* open(handle, counterHigh, counterLow, ciphertext (tag last), out) -> boolean */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], result;
  uint8_t iv[IV_BYTES], *in, *out;
  size_t in_length, out_length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_type(env, "open takes 5 arguments");
  cipher_t *c = get_cipher(env, argv[0], false);
  if (c == NULL || !get_nonce(env, argv[1], argv[2], iv)) return NULL;
  if (!get_bytes(env, argv[3], &in, &in_length)) return throw_type(env, "ciphertext must be a Uint8Array");
  if (!get_bytes(env, argv[4], &out, &out_length)) return throw_type(env, "out must be a Uint8Array");
  bool ok = false;
  if (in_length >= TAG_BYTES) {
    size_t length = in_length - TAG_BYTES;
    if (out_length < length) return throw_range(env, "out is shorter than the plaintext");
    if (bad_overlap(in, out, length)) return throw_range(env, "out overlaps the ciphertext without being in place");
    int final_length = 0;
    /* The tag is copied into the context first, so decrypting in place cannot touch it. */
    if (!EVP_DecryptInit_ex(c->ctx, NULL, NULL, NULL, iv) ||
        !EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, in + length) ||
        !update(c->ctx, false, out, in, length))
      return throw_openssl(env);
    ok = EVP_DecryptFinal_ex(c->ctx, out + length, &final_length) > 0 && final_length == 0;
    /* Plaintext that failed authentication is not left for a careless caller to use. */
    if (!ok && length > 0) memset(out, 0, length);
  }
  CHECK(napi_get_boolean(env, ok, &result));
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
      {"create", NULL, js_create, NULL, NULL, NULL, napi_default, NULL},
      {"free", NULL, js_free, NULL, NULL, NULL, napi_default, NULL},
      {"seal", NULL, js_seal, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}
