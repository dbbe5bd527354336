// A hostile TLS 1.3 client for tests/e2e/tls_test.py: after the handshake it sends
// KeyUpdate messages that ask the server to update too, and never reads, so each answer
// the server owes stays unsent. OpenSSL, because it sends update_requested on every
// call (a wolfSSL client asks once until it has read the answer).
//   key_update_flood HOST PORT COUNT
// Prints "closed after N" when the server ended the connection after N updates, or
// "sent N" when all went out; exit 1 when the handshake fails.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: key_update_flood HOST PORT COUNT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const long count = strtol(argv[3], nullptr, 10);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  // A small receive window: the server's answers fill it, then its send buffer.
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(atoi(argv[2])));
  inet_pton(AF_INET, argv[1], &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    perror("connect");
    close(fd);
    return 1;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  if (SSL_connect(ssl) != 1) {
    ERR_print_errors_fp(stderr);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return 1;
  }
  long sent = 0;
  while (sent < count && SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) == 1 &&
         SSL_do_handshake(ssl) == 1) {
    ++sent;
  }
  if (sent < count) {
    printf("closed after %ld\n", sent);
  } else {
    printf("sent %ld\n", count);
  }
  fflush(stdout);
  // Freed, so that a sanitizer build of this client reports no leak.
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(fd);
  return 0;
}
