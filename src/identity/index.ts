/**
 * Identities: Ed25519 key pairs, their libp2p PeerId text form, key files and
 * domain-separated signatures.
 *
 * @module
 */
export {
  type KeyPair,
  PUBLIC_KEY_BYTES,
  SECRET_KEY_BYTES,
  SEED_BYTES,
  generateKeyPair,
  keyPairFromSeed,
  keyPairFromSecretKey,
  seedFromSecretKey,
  assertBytes,
  bytesEqual,
} from './key-pair.js'
export {
  PEER_ID_LENGTH,
  PEER_ID_PREFIX,
  PEER_ID_BYTES,
  peerIdFromPublicKey,
  publicKeyFromPeerId,
  isPeerId,
  peerIdToBytes,
  peerIdFromBytes,
} from './peer-id.js'
export { type Identity, createIdentity, identityFromSeed, identityFromKeyPair } from './identity.js'
export {
  type KeyFileOptions,
  type KeyFileResult,
  KEY_FILE_TYPE,
  KEY_FILE_VERSION,
  loadOrCreateIdentity,
  loadOrCreateIdentityFile,
  loadIdentity,
  saveIdentity,
  encodeKeyFile,
  decodeKeyFile,
} from './key-file.js'
export {
  type SignatureTag,
  SIGNATURE_BYTES,
  SIGNATURE_TAGS,
  sign,
  verify,
  assertValidSignature,
  signedBytes,
} from './signature.js'
