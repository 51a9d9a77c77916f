/**
 * STUN (RFC 8489) for peerlink: message codec with the ICE, TURN and RFC 5780
 * attributes, integrity and fingerprint, TURN ChannelData framing, client
 * transactions with retransmission, the Binding client and NAT behaviour discovery.
 *
 * @module
 */

export {
  STUN_FINGERPRINT_XOR,
  STUN_HEADER_LENGTH,
  STUN_MAGIC_COOKIE,
  STUN_MAX_ATTRIBUTES,
  STUN_MAX_MESSAGE_LENGTH,
  STUN_TRANSACTION_ID_LENGTH,
} from './constants.js'
export { STUN_METHOD_CODES, classOf, decodeMessageType, encodeMessageType, methodCodeOf } from './message-type.js'
export type { StunClass, StunMessageType, StunMethod } from './message-type.js'
export { STUN_ATTRIBUTE_CODES, attributeNameOf, isComprehensionRequired } from './attribute-type.js'
export type { KnownStunAttributeType } from './attribute-type.js'
export {
  ADDRESS_FAMILY_CODES,
  addressFamilyOf,
  decodeAddressValue,
  encodeAddressValue,
  formatIp,
  normalizeIp,
  parseIp,
  sameTransportAddress,
} from './address.js'
export type { AddressFamily, ParsedIp, TransportAddress } from './address.js'
export { decodeAttributeValue, encodeAttributeValue } from './attribute.js'
export type {
  StunAddressErrorCodeValue,
  StunAttribute,
  StunAttributeOf,
  StunAttributeType,
  StunChangeRequestValue,
  StunErrorCodeValue,
  StunIcmpValue,
  StunPasswordAlgorithm,
} from './attribute.js'
export {
  createStunRequest,
  createTransactionId,
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  getAttributes,
} from './message.js'
export type { DecodeStunOptions, DecodedStunMessage, EncodeStunOptions, StunMessage } from './message.js'
export {
  assertIntegrity,
  hmacSha1,
  hmacSha256,
  longTermKey,
  shortTermKey,
  userHash,
  verifyIntegrity,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from './integrity.js'
export type { StunPasswordAlgorithmName } from './integrity.js'
export { computeFingerprint, crc32, verifyFingerprint } from './fingerprint.js'
export {
  MAX_CHANNEL_NUMBER,
  MIN_CHANNEL_NUMBER,
  channelDataFrameLength,
  decodeChannelData,
  encodeChannelData,
  isValidChannelNumber,
} from './channel-data.js'
export type {
  ChannelData,
  ChannelDataFramingOptions,
  ChannelDataTransport,
  DecodeChannelDataOptions,
  EncodeChannelDataOptions,
} from './channel-data.js'
export { streamFrameLength } from './stream-framing.js'
export type { StreamFrame, StreamFrameKind } from './stream-framing.js'
export { isChannelData, isStunMessage } from './classify.js'
export { createDgramEndpoint, createUdxEndpoint } from './datagram-endpoint.js'
export type { DatagramEndpoint, DatagramListener, DatagramSource, UdxLikeSocket } from './datagram-endpoint.js'
export { StunTransactionManager } from './transaction.js'
export type {
  StunRequestOptions,
  StunResponse,
  StunRetransmitOptions,
  StunSendFunction,
  StunTransactionManagerOptions,
} from './transaction.js'
export { StunClient } from './stun-client.js'
export type { StunClientOptions } from './stun-client.js'
export { resolveStunHost, stunBinding } from './binding-client.js'
export type { StunBindingOptions, StunBindingResult, StunServerAddress } from './binding-client.js'
export { discoverNatBehavior } from './nat-behavior-discovery.js'
export type {
  NatBehaviorDiscoveryOptions,
  NatBehaviorResult,
  NatFilteringBehavior,
  NatMappingBehavior,
} from './nat-behavior-discovery.js'
