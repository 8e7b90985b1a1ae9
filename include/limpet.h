/* limpet.h: the public C API of limpet.
 *
 * Embedding the server in a program that embeds Python arrives with the
 * embedded server; for now this header gives the version. */
#ifndef LIMPET_H
#define LIMPET_H

#define LIMPET_VERSION_MAJOR 0
#define LIMPET_VERSION_MINOR 1
#define LIMPET_VERSION_PATCH 0
#define LIMPET_VERSION "0.1.0"

/* The wire protocol version this build speaks (docs/protocol.md). */
#define LIMPET_PROTOCOL_VERSION 1

#endif
