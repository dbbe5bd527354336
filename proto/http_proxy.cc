#include "proto/http_proxy.h"

#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ascii.h"
#include "core/json.h"
#include "core/log.h"
#include "core/plain_stream.h"
#include "core/pump.h"
#include "core/reactor.h"
#include "fmt/format.h"
#include "proto/http/forward.h"
#include "proto/http/head.h"
#include "proto/http/user_route.h"
#include "proto/http_config.h"
#include "proto/http_pool.h"
#include "proto/session_route.h"
#include "proto/session_tls.h"
#include "route/router.h"
#include "route/upstream_connect.h"
#include "tls/config.h"
#include "tls/tls_stream.h"

namespace ringproxy {
namespace {

using http::BodyKind;
using http::ParseStatus;

// Output waiting in a stream's own buffer beyond this makes the sender wait
// (back-pressure): a slow reader pins at most this much per direction.
constexpr size_t kFlushAbove = 64 * 1024;
// How long a closing connection reads what its client still sends (nginx's
// lingering_timeout), so that the client reads our answer before any reset.
constexpr int64_t kLingerMs = 2000;
// How long an upstream that failed to take the request may take to show its answer.
constexpr int64_t kEarlyAnswerMs = 1000;
// 1xx responses before a final one: an upstream sending them forever would hold the
// session, each within its read deadline.
constexpr int kMaxInterimResponses = 32;
// Request bodies up to this size are read whole before an upstream is chosen.
constexpr size_t kBufferBody = 64 * 1024;
// A body of known length with at least this much still to come goes through a pipe
// (splice) when both sockets are plain.
constexpr uint64_t kSpliceAbove = 256 * 1024;
constexpr uint64_t kNoLimit = UINT64_MAX;  // MoveBody's max_bytes when nothing caps a body
// An upstream's receive may hold more ring buffers before it pauses, and copies none
// out: a response body runs ahead of the client in buffers it is then sent from,
// rather than in copies (the multishot receive posts many buffers per loop turn).
constexpr RecvLimits kUpstreamRecv{64, 0};

std::string_view AsView(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::string_view ReasonOf(int status) {
  switch (status) {
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

// The Date field's value now (RFC 9110 §6.6.1: every 2xx-4xx response the proxy makes
// or passes on has one), formatted once a second per shard.
std::string_view HttpDateNow() {
  thread_local int64_t second = -1;
  thread_local std::string text;
  timespec now;
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  if (now.tv_sec != second) {
    second = now.tv_sec;
    text = http::FormatHttpDate(second);
  }
  return text;
}

// Nothing but line ends (or nothing): no request has begun.
bool Blank(std::string_view head) {
  return head.find_first_not_of("\r\n") == std::string_view::npos;
}

// The proxy's own answer to *status: a small text body (or the configured page, or a
// redirect to the error handler: *status becomes 302), and the connection closes after it.
std::string ErrorResponse(int* status_inout, std::string_view request_id,
                          const HttpListenerSettings& settings, std::string_view upstream,
                          bool head_only) {
  int status = *status_inout;
  std::string_view reason = ReasonOf(status);
  std::string_view type = "text/plain";
  std::string body;
  std::string location;
  const bool upstream_error = status >= 502 && status <= 504;
  if (upstream_error && !settings.error_handler_url.empty()) {
    location = fmt::format("{}{}err={}&up={}", settings.error_handler_url,
                           settings.error_handler_url.find('?') == std::string::npos ? '?' : '&',
                           status, upstream);
    status = 302;
    reason = ReasonOf(status);
  } else if (const std::string* page = settings.ErrorPage(status)) {
    body = *page;
    type = "text/html";
  } else {
    body = fmt::format("{} {}\n", status, reason);
  }
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
      "Connection: close\r\n",
      status, reason, HttpDateNow(), type, body.size());
  if (!location.empty()) out += fmt::format("Location: {}\r\n", location);
  if (!request_id.empty()) out += fmt::format("X-Request-ID: {}\r\n", request_id);
  out += "\r\n";
  // A response to HEAD has no content (RFC 9110 §9.3.2): its head says what GET would get.
  if (!head_only) out += body;
  *status_inout = status;
  return out;
}

// RFC 9110 §9.2.2, and WebDAV's safe reads (RFC 4918 PROPFIND, RFC 3253 REPORT), which
// CalDAV/CardDAV sync clients send on pooled connections as often as GET.
bool Idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE" || method == "PROPFIND" || method == "REPORT";
}

// The origin-form the upstream gets: an absolute-form target's path and query.
std::string_view OriginForm(std::string_view target) {
  if (target.empty() || target[0] == '/' || target == "*") return target;
  const size_t scheme = target.find("://");
  if (scheme == std::string_view::npos) return target;
  const size_t path = target.find_first_of("/?", scheme + 3);
  if (path == std::string_view::npos) return "/";
  if (target[path] == '?') return target.substr(path);  // "http://a?q": the caller makes it "/?q"
  return target.substr(path);
}

// A per-shard request id (http::RequestIds), its prefix random per shard start.
void NextRequestId(std::string* out) {
  thread_local http::RequestIds ids([] {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != sizeof v) v = static_cast<uint64_t>(MonotonicNowNs());
    return v;
  }());
  ids.Next(out);
}

// Bytes from a stream, with what a head parse read past the head's end kept in front
// of the stream's own.
class Inbound {
 public:
  explicit Inbound(ByteStream* s) : s_(s) {}
  void set_stream(ByteStream* s) { s_ = s; }
  // What is there now, without waiting (may be empty).
  std::string_view Peek() const {
    if (pos_ < carry_.size()) return std::string_view(carry_).substr(pos_);
    return AsView(s_->Peek());
  }
  void Consume(size_t n) {
    if (pos_ < carry_.size()) {
      pos_ += n;
      if (pos_ == carry_.size()) {
        carry_.clear();
        carry_.shrink_to_fit();
        pos_ = 0;
      }
      return;
    }
    s_->Consume(n);
  }
  // Waits for bytes: > 0 available, 0 at EOF, -errno.
  Task<IoResult> Fill(Deadline deadline) {
    if (pos_ < carry_.size()) co_return IoResult{static_cast<int>(carry_.size() - pos_)};
    IoResult r = co_await s_->Fill(deadline);
    co_return r;
  }
  // Bytes read past a head: they come first. Nothing may be kept already.
  void Keep(std::string_view surplus) {
    RP_CHECK(pos_ == carry_.size());
    carry_.assign(surplus);
    pos_ = 0;
  }
  size_t kept() const { return carry_.size() - pos_; }
  ByteStream* stream() const { return s_; }
  size_t buffered() const { return kept() + s_->buffered(); }

 private:
  ByteStream* s_;
  std::string carry_;
  size_t pos_ = 0;
};

// How moving a body ended.
enum class Flow : uint8_t {
  kOk,
  kEof,         // the source ended early
  kTimeout,     // the source sent nothing for its timeout
  kError,       // the source failed
  kSinkError,   // the destination failed or did not take bytes in time
  kStopped,     // Stop()
  kBadFraming,  // a chunked body broke its grammar
  kTooLarge,    // over max_body_bytes
};

std::string_view FlowName(Flow f) {
  switch (f) {
    case Flow::kOk:
      return "ok";
    case Flow::kEof:
      return "eof";
    case Flow::kTimeout:
      return "timeout";
    case Flow::kError:
      return "error";
    case Flow::kSinkError:
      return "send-failed";
    case Flow::kStopped:
      return "stopped";
    case Flow::kBadFraming:
      return "bad-chunked-framing";
    case Flow::kTooLarge:
      return "too-large";
  }
  return "?";
}

Flow FlowOfRead(IoResult r) {
  if (r.res == 0) return Flow::kEof;
  if (r.timed_out()) return Flow::kTimeout;
  if (r.cancelled()) return Flow::kStopped;
  return Flow::kError;
}

void AppendChunk(std::string_view data, std::string* out) {
  fmt::format_to(std::back_inserter(*out), "{:x}\r\n", data.size());
  out->append(data);
  out->append("\r\n");
}

class HttpSession final : public SessionBase, private PeerEndObserver {
 public:
  HttpSession(ShardServices* services, SnapshotRef snapshot, const ListenerConfig* listener, int fd,
              SocketAddress peer)
      : services_(services),
        snapshot_(std::move(snapshot)),
        listener_(listener),
        settings_(static_cast<const HttpListenerSettings*>(listener->protocol_settings.get())),
        peer_(peer),
        client_(UniqueFd(fd), services->buffers),
        down_(&client_),
        in_(&client_),
        parser_(settings_->limits) {}

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    connect_.stop = true;
    if (pump_ != nullptr) pump_->Stop();
    if (pending_route_ != nullptr) pending_route_->done.Set();
    if (connect_.current_fd >= 0) Reactor::Current()->CancelFd(connect_.current_fd);
    if (up_ != nullptr) up_->stream()->Abort();
    if (client_tls_ != nullptr) client_tls_->Abort();
    if (cut_needs_reset_) client_.ResetOnClose();
    client_.Abort();
  }

  // The client ended its side while the session waited for the upstream's answer (as
  // nginx, a half-close counts): the upstream's work is dropped, not waited for (a long
  // poll would hold its connection for up to an hour), and the request logs 499.
  void OnPeerEnded(bool reset) override {
    // After a FIN, bytes not read yet are a pipelined request (the client still reads,
    // as for nginx), unless over TLS they are records too short to hold one: the
    // close_notify that most clients send before their FIN.
    const bool only_tls_alerts =
        client_tls_ != nullptr && in_.kept() == 0 && client_tls_->OnlyShortRecordsLeft();
    if (!reset && in_.buffered() > 0 && !only_tls_alerts) return;
    client_left_ = true;
    if (up_ != nullptr) up_->stream()->Abort();
  }

  // Stopped, and not yet counted by a tunnel's pump.
  bool StoppedUncounted() const { return stopped_ && !tunnel_stopped_; }

  void Drain() override {
    draining_ = true;
    if (!idle_) return;
    // Between requests nothing is lost by closing now.
    if (requests_ > 0) {
      down_->Abort();
      return;
    }
    // A connection accepted before the drain may have its first request on the way: it
    // is awaited a linger's time, as for one served from the backlog during the drain.
    client_.ShortenWait(Deadline::AfterMs(kLingerMs));
  }

  Task<void> Run();
  // The end of the connection: the upstream closed, the client's side closed after a
  // short linger (so that an answer is not lost to a reset), both streams quiesced.
  Task<void> Close();

 private:
  // Reads the next request head into req_; 0 when there is one, -1 to close quietly
  // (EOF, idle timeout, drain), else the status to answer before closing.
  Task<int> ReadRequestHead();
  // One exchange; false when the client connection must close.
  Task<bool> Exchange();
  // An upstream connection for the request: pooled (to the balancer's pick, or the
  // user's server) or new; a server that fails the TLS handshake counts a failure and
  // the next is tried. 0, the status to answer (502, 503, 504), or -1 when stopped.
  Task<int> Acquire(bool allow_pooled);
  // Per-user routing: sets pinned_ to the user's server when the group has it.
  Task<void> RouteByUser();
  // Sends the request head and body; Flow of the client side or kSinkError.
  Task<Flow> SendRequest();
  // Moves a body of `kind` from `in` to `out`, re-framed as `out_kind`.
  // A chunked source is decoded by `chunked` (it may have begun already). `prefix` (a
  // head) goes out with the body's first bytes in one write when they are at hand, and
  // alone before a wait for them. max_bytes: kNoLimit, or the most it may move.
  // *prefix_tried says whether any of the prefix may have reached `out` (if not, the
  // caller may still answer instead).
  Task<Flow> MoveBody(Inbound* in, ByteStream* out, BodyKind kind, uint64_t length,
                      BodyKind out_kind, int64_t read_timeout_ms, uint64_t max_bytes,
                      uint64_t* moved, http::ChunkedDecoder* chunked, std::string_view prefix,
                      bool* prefix_tried);
  // Reads the request body into body_, whole when it is at most kBufferBody bytes, else
  // its first part (the rest streams): a small body reaches no upstream unless it is
  // whole and well-framed, and a request with it may be sent again.
  Task<Flow> ReadBodyStart();
  Task<Flow> Deliver(ByteStream* out, std::string_view data);
  // A write's result as a Flow; notes whether a failure was the send timeout.
  Flow SinkFlow(IoResult r);
  // Answers with the proxy's own response; the connection closes after it.
  Task<void> Answer(int status);
  // Acquire's value when the server it connected to failed the TLS handshake.
  static constexpr int kNextServer = -2;
  Task<int> AcquireOnce(bool allow_pooled, int* handshake_failed);
  // The access line's fields of one request, before it is read.
  void ResetRequestState();
  // After a 101: both directions are a pump until either side ends.
  Task<void> Tunnel();
  // The upstream connection ends: pooled when `reusable`, else closed.
  void Release(bool reusable);
  void LogAccess();
  Deadline SendDeadline() const { return Deadline::AfterMs(listener_->send_timeout_ms); }
  UpstreamBalancer* balancer() const {
    return &snapshot_->balancers[static_cast<size_t>(group_index_)];
  }
  // The mail mode's redirect, else the virtual server of req_, its rewrites and the location:
  // target_, server_, group_index_, upstream_timeout_ms_, route_by_user_, location_,
  // redirect_status_ and redirect_to_; the path normalised first and after a rewrite. 0,
  // or the status to answer (400: no server for Host, a ".." past the root, a bad escape).
  int ChooseRoute();
  // target_ as http::NormalizePath leaves it; false for a ".." past the root or a bad
  // escape.
  bool Normalize();
  // The location's node_from_path: pins the server the path names; 404 for none.
  int PinNode();
  // The request's target for logs: credential arguments redacted (WithoutTokens).
  std::string LoggedTarget() const {
    std::string redacted;
    return http::WithoutTokens(req_.target, &redacted) ? redacted : std::string(req_.target);
  }
  // Answers redirect_status_ with Location: redirect_to_.
  Task<void> Redirect();
  // server_addr_ and server_ip_, read once.
  void LearnLocalAddress();
  // The Host, or for a request without one the address it came to (nginx's $host).
  std::string_view HostForRedirect();

  ShardServices* services_;
  SnapshotRef snapshot_;
  const ListenerConfig* listener_;
  const HttpListenerSettings* settings_;
  SocketAddress peer_;
  PlainStream client_;
  std::unique_ptr<TlsStream> client_tls_;
  ByteStream* down_;
  Inbound in_;
  std::string head_buf_;  // the request head being read
  http::RequestParser parser_;
  http::RequestHead req_;
  std::string body_;  // the request body read before the upstream is chosen
  bool body_complete_ = false;
  http::ChunkedDecoder req_chunks_;
  http::ChunkedDecoder resp_chunks_;
  std::string out_;  // a head being written
  std::unique_ptr<UpstreamLink> up_;
  std::string resp_buf_;  // the response head being read
  http::ResponseHead resp_;
  ConnectControl connect_{.success_at_connect = false};  // an answer's head clears failures
  Pump* pump_ = nullptr;
  PendingRoute* pending_route_ = nullptr;  // while RouteByUser waits for the lookup
  std::string client_ip_;
  std::string local_ip_;
  std::string server_addr_;  // "ip:port" the client connected to, once a request needs it
  std::string server_ip_;    // its address alone
  std::string request_id_;
  std::string user_;              // routed by this user (or account id)
  std::string_view route_ = "-";  // where the user's route came from
  int pinned_ = -1;               // the user's server in the group
  bool pin_only_ = false;         // pinned_ by the path's node: no other server will do
  int group_index_ = 0;           // this request's upstream group
  int64_t upstream_timeout_ms_ = 0;
  bool route_by_user_ = false;
  const HttpVirtualServer* server_ = nullptr;
  const HttpLocation* location_ = nullptr;
  std::string_view target_;  // origin-form, rewritten: what the upstream is asked for
  std::string target_buf_;
  std::string admin_host_;  // admin_console: the Host sent upstream
  int redirect_status_ = 0;
  std::string redirect_to_;
  uint64_t requests_ = 0;
  bool stopped_ = false;
  bool tunnel_stopped_ = false;
  bool draining_ = false;
  bool idle_ = false;  // waiting for the next request, nothing of it received
  bool reused_ = false;
  bool client_keep_alive_ = false;
  bool linger_ = false;  // the client may still be sending: read a while before closing
  bool cut_ = false;     // the response was cut short after its head went out
  // A close-delimited body goes to a plain client: until it ends whole, the end is a reset.
  bool cut_needs_reset_ = false;
  // This exchange, for the access log.
  int status_ = 0;
  bool client_left_ = false;              // see OnPeerEnded
  bool sink_timed_out_ = false;           // the last failed write was the send timeout
  std::vector<uint32_t> failed_servers_;  // servers that failed this request (connect or answer)
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  int64_t start_ns_ = 0;
  int64_t connected_ns_ = 0;
  int64_t header_ns_ = 0;
  std::string upstream_text_;
  std::string_view end_ = "ok";
};

Task<int> HttpSession::ReadRequestHead() {
  head_buf_.clear();
  parser_.Reset();
  const bool first = requests_ == 0;
  // Draining: a first request that is not on its way within the linger is not waited for.
  const int64_t first_wait_ms = draining_
                                    ? std::min<int64_t>(settings_->header_timeout_ms, kLingerMs)
                                    : settings_->header_timeout_ms;
  const Deadline wait = Deadline::AfterMs(first ? first_wait_ms : settings_->keepalive_timeout_ms);
  Deadline head_deadline = wait;
  for (;;) {
    std::string_view avail = in_.Peek();
    if (!avail.empty()) {
      const bool was_blank = Blank(head_buf_);
      head_buf_.append(avail);
      in_.Consume(avail.size());
      if (was_blank && !Blank(head_buf_)) {
        if (!first) head_deadline = Deadline::AfterMs(settings_->header_timeout_ms);
        start_ns_ = TurnNowNs();
      }
      const ParseStatus st = parser_.Parse(head_buf_, &req_);
      if (st == ParseStatus::kDone) {
        in_.Keep(std::string_view(head_buf_).substr(parser_.head_bytes()));
        co_return 0;
      }
      if (st == ParseStatus::kError) co_return parser_.error_status();
      continue;
    }
    // Empty lines between requests (a legacy client's CRLF after a body; RFC 9112 §2.2;
    // the parser allows a few) begin no request: the connection is still idle.
    const bool blank = Blank(head_buf_);
    idle_ = blank;
    // A drain ends a connection between requests; its first request is still awaited
    // (a connection served from the backlog during a drain has it on the way).
    if (idle_ && (stopped_ || (draining_ && requests_ > 0))) co_return -1;
    IoResult r = co_await in_.Fill(blank ? wait : head_deadline);
    idle_ = false;
    if (r.res > 0) continue;
    if (blank) co_return -1;
    if (r.timed_out()) co_return 408;
    if (r.res == 0) co_return 400;  // the head was cut short
    co_return -1;
  }
}

Task<Flow> HttpSession::Deliver(ByteStream* out, std::string_view data) {
  IoResult w = co_await out->Write(AsBytes(data), SendDeadline());
  if (w.ok() && out->pending_output() > kFlushAbove) w = co_await out->Flush(SendDeadline());
  co_return SinkFlow(w);
}

Flow HttpSession::SinkFlow(IoResult r) {
  if (r.ok()) return Flow::kOk;
  if (stopped_) return Flow::kStopped;
  sink_timed_out_ = r.timed_out();
  return Flow::kSinkError;
}

Task<Flow> HttpSession::MoveBody(Inbound* in, ByteStream* out, BodyKind kind, uint64_t length,
                                 BodyKind out_kind, int64_t read_timeout_ms, uint64_t max_bytes,
                                 uint64_t* moved, http::ChunkedDecoder* chunked,
                                 std::string_view prefix, bool* prefix_tried) {
  if (kind != BodyKind::kChunked) chunked = nullptr;
  // Every write below carries what is left of the prefix first.
  *prefix_tried = prefix.empty();
  std::string stage(prefix);
  uint64_t left = length;
  for (;;) {
    if (kind == BodyKind::kLength && left == 0) break;
    if (chunked && chunked->done()) break;
    PlainStream* splice_from = in->stream()->plain();
    PlainStream* splice_to = out->plain();
    if (kind == BodyKind::kLength && out_kind == BodyKind::kLength && prefix.empty() &&
        left >= kSpliceAbove && in->kept() == 0 && splice_from != nullptr && splice_to != nullptr &&
        listener_->relay != RelayMode::kCopy) {
      uint64_t spliced = 0;
      const SpliceEnd e =
          co_await SpliceExactly(splice_from, splice_to, left, services_->pipes, read_timeout_ms,
                                 listener_->send_timeout_ms, &spliced);
      *moved += spliced;
      left -= spliced;
      if (e == SpliceEnd::kDone) break;
      if (stopped_) co_return Flow::kStopped;
      switch (e) {
        case SpliceEnd::kSourceEof:
          co_return Flow::kEof;
        case SpliceEnd::kSourceTimeout:
          co_return Flow::kTimeout;
        case SpliceEnd::kSinkTimeout:
          sink_timed_out_ = true;
          co_return Flow::kSinkError;
        case SpliceEnd::kSinkError:
          co_return Flow::kSinkError;
        default:
          co_return Flow::kError;
      }
    }
    std::string_view avail = in->Peek();
    if (avail.empty()) {
      // Before a real wait (nothing received yet; it may last a long poll) what is
      // ready goes out: the head, and what the client's socket had no room for.
      if (in->stream()->buffered() == 0 && !prefix.empty()) {
        *prefix_tried = true;
        Flow f = co_await Deliver(out, prefix);
        if (f != Flow::kOk) co_return f;
        prefix = {};
        stage.clear();
      }
      if (in->stream()->buffered() == 0 && out->pending_output() > 0) {
        Flow f = SinkFlow(co_await out->Flush(SendDeadline()));
        if (f != Flow::kOk) co_return f;
      }
      IoResult r = co_await in->Fill(Deadline::AfterMs(read_timeout_ms));
      if (r.res > 0) continue;
      if (r.res == 0 && kind == BodyKind::kUntilClose) {
        // Over TLS only close_notify ends such a body: a bare FIN may be a truncation
        // (RFC 9112 §9.8), and the client must not see it as the whole body.
        const bool cut = up_ != nullptr && up_->tls != nullptr && in->stream() == up_->tls.get() &&
                         up_->tls->truncated();
        if (cut) co_return Flow::kError;
        break;
      }
      co_return stopped_ ? Flow::kStopped : FlowOfRead(r);
    }
    if (!prefix.empty()) {
      prefix = {};
    } else {
      stage.clear();
    }
    size_t used = 0;
    std::string_view direct;  // passed on without a copy (the same framing)
    if (chunked) {
      while (used < avail.size() && !chunked->done()) {
        const http::ChunkedDecoder::Step s = chunked->Next(avail.substr(used));
        if (chunked->failed()) co_return Flow::kBadFraming;
        if (s.consumed == 0) break;
        used += s.consumed;
        if (s.data.empty()) continue;
        *moved += s.data.size();
        if (out_kind == BodyKind::kChunked) {
          AppendChunk(s.data, &stage);
        } else {
          stage.append(s.data);
        }
      }
    } else {
      used = kind == BodyKind::kLength ? static_cast<size_t>(std::min<uint64_t>(avail.size(), left))
                                       : avail.size();
      left -= kind == BodyKind::kLength ? used : 0;
      *moved += used;
      if (out_kind == BodyKind::kChunked) {
        AppendChunk(avail.substr(0, used), &stage);
      } else if (!stage.empty()) {
        stage.append(avail.substr(0, used));
      } else {
        direct = avail.substr(0, used);
      }
    }
    if (*moved > max_bytes) co_return Flow::kTooLarge;
    if (out_kind == BodyKind::kChunked && chunked && chunked->done()) stage.append("0\r\n\r\n");
    // The source's bytes stay where they are until written: the view is valid until the
    // next call on the source, and the write does not touch it.
    const std::string_view data = stage.empty() ? direct : std::string_view(stage);
    Flow f = Flow::kOk;
    if (!data.empty()) {
      *prefix_tried = true;
      f = co_await Deliver(out, data);
    }
    in->Consume(used);
    if (f != Flow::kOk) co_return f;
  }
  stage.assign(prefix);  // not sent yet when the body had no bytes
  if (out_kind == BodyKind::kChunked && !chunked) stage.append("0\r\n\r\n");
  if (!stage.empty()) {
    *prefix_tried = true;
    Flow f = co_await Deliver(out, stage);
    if (f != Flow::kOk) co_return f;
  }
  if (out->pending_output() > 0) co_return SinkFlow(co_await out->Flush(SendDeadline()));
  co_return Flow::kOk;
}

Task<void> HttpSession::Answer(int status) {
  status_ = status;
  client_keep_alive_ = false;
  linger_ = true;
  const std::string text =
      ErrorResponse(&status_, request_id_, *settings_, upstream_text_, req_.method == "HEAD");
  bytes_out_ += text.size();
  co_await WriteAll(down_, AsBytes(text), SendDeadline());
}

Task<int> HttpSession::Acquire(bool allow_pooled) {
  int handshake_failed = 0;  // the answer when the last server left failed its handshake
  for (;; allow_pooled = false) {
    const int acquired = co_await AcquireOnce(allow_pooled, &handshake_failed);
    if (acquired != kNextServer) co_return acquired;
  }
}

Task<int> HttpSession::AcquireOnce(bool allow_pooled, int* handshake_failed) {
  if (stopped_) co_return -1;  // Stop() had no upstream to abort
  UpstreamBalancer* b = balancer();
  const UpstreamGroupConfig& group = b->config();
  UpstreamPlan plan;
  const int64_t now = MonotonicNowNs();
  if (pin_only_) {
    plan.servers[0] = static_cast<uint32_t>(pinned_);
    plan.size = 1;
  } else if (pinned_ >= 0 && !b->IsDown(static_cast<uint32_t>(pinned_), now)) {
    // The user's server first, the others after it should it fail: no balancing
    // decision, so no round-robin turn is used up (the next unrouted request's pick
    // is the one it would have been).
    plan.size = b->PlanFrom(static_cast<uint32_t>(pinned_), now, plan.servers);
  } else {
    MakePlan(b, peer_, &plan);
    // A user's server marked down goes first only when every server is.
    if (pinned_ >= 0 && plan.size > 0 && b->IsDown(plan.servers[0], now)) {
      PinFirst(&plan, static_cast<uint32_t>(pinned_));
    }
  }
  if (!failed_servers_.empty()) {
    // Servers that failed this request already are not tried again for it.
    const auto tried = [&](uint32_t server) {
      return std::find(failed_servers_.begin(), failed_servers_.end(), server) !=
             failed_servers_.end();
    };
    plan.size = static_cast<size_t>(std::remove_if(plan.servers, plan.servers + plan.size, tried) -
                                    plan.servers);
    if (plan.size == 0) {
      RP_LOG(kWarn, "{}: client {}: every server of '{}' failed this request", listener_->name,
             peer_.ToString(), group.name);
      if (*handshake_failed != 0) {
        services_->metrics->sessions_no_upstream.Add();  // none was usable, as for TCP
        co_return *handshake_failed;
      }
      co_return 502;
    }
  }
  reused_ = false;
  if (allow_pooled && plan.size > 0 && settings_->upstream_keepalive > 0) {
    std::unique_ptr<UpstreamLink> pooled = services_->http_pool->Take(
        snapshot_.get(), static_cast<uint32_t>(group.index), plan.servers[0]);
    if (pooled != nullptr) {
      pooled->lease = ServerLease(b, pooled->server);
      up_ = std::move(pooled);
      reused_ = true;
      upstream_text_ = group.servers[up_->server].text;
      connected_ns_ = TurnNowNs();
      co_return 0;
    }
  }
  connect_.last_server = -1;
  Result<UpstreamConnection> connected =
      co_await ConnectUpstream(b, peer_, listener_->name, &connect_, &plan);
  services_->metrics->upstream_connect_failures.Add(connect_.failures);
  connect_.failures = 0;
  if (!connected.ok()) {
    if (stopped_) co_return -1;
    if (connect_.last_server >= 0) {
      upstream_text_ = group.servers[static_cast<size_t>(connect_.last_server)].text;
    }
    services_->metrics->sessions_no_upstream.Add();
    RP_LOG(kWarn, "{}: client {}: no upstream of '{}' reachable: {}", listener_->name,
           peer_.ToString(), group.name, strerror(connected.error().code));
    if (connected.error().side == Side::kInternal) co_return 503;
    co_return connected.error().code == ETIMEDOUT ? 504 : 502;  // as nginx: a timeout is 504
  }
  // A connect that completed in the turn a stop came had nothing left to cancel: the
  // stop is seen here, before a request goes out on it.
  if (stopped_) co_return -1;
  services_->metrics->upstream_connects.Add();
  // The plan's servers before this one failed to connect: a later failover of this
  // request does not try them again.
  for (size_t i = 0; i < plan.size && plan.servers[i] != connected->server_index; ++i) {
    failed_servers_.push_back(plan.servers[i]);
  }
  auto link = std::make_unique<UpstreamLink>();
  link->generation = snapshot_;
  link->group = static_cast<uint32_t>(group.index);
  link->server = connected->server_index;
  link->lease = std::move(connected->lease);
  link->plain =
      std::make_unique<PlainStream>(std::move(connected->fd), services_->buffers, kUpstreamRecv);
  up_ = std::move(link);
  upstream_text_ = group.servers[up_->server].text;
  if (const auto* tls = group.extensions.Get<TlsUpstreamConfig>(kTlsTable)) {
    TlsClientShardContext* ctx = snapshot_->tls_clients[static_cast<size_t>(group.index)].get();
    const IoResult secured = co_await ConnectTls(
        services_, ctx, tls->handshake_timeout_ms, up_->plain.get(), listener_, peer_,
        fmt::format("{} ({})", upstream_text_, group.name), &stopped_, &up_->tls);
    if (!secured.ok()) {
      const uint32_t server = up_->server;
      const bool local = up_->tls == nullptr;  // no TLS session: the proxy's own failure
      Release(false);
      if (stopped_) co_return -1;
      if (local) co_return 503;
      // The server is failing (max_fails), and no request byte went to it: the next
      // server may have the request whatever its method (nginx: proxy_next_upstream
      // error timeout). A timeout is 504 should no server be left, as nginx answers.
      b->ReportFailure(server, MonotonicNowNs());
      failed_servers_.push_back(server);
      *handshake_failed = secured.timed_out() ? 504 : 502;
      co_return kNextServer;
    }
  }
  connected_ns_ = TurnNowNs();
  co_return 0;
}

void HttpSession::Release(bool reusable) {
  if (up_ == nullptr) return;
  ++up_->requests;
  if (reusable && !stopped_) {
    services_->http_pool->Put(std::move(up_), settings_->upstream_keepalive,
                              settings_->upstream_idle_timeout_ms);
  } else {
    services_->http_pool->Retire(std::move(up_));
  }
}

int HttpSession::ChooseRoute() {
  group_index_ = listener_->upstream_index;
  upstream_timeout_ms_ = settings_->upstream_timeout_ms;
  route_by_user_ = settings_->route_by_user;
  server_ = nullptr;
  location_ = nullptr;
  redirect_status_ = 0;
  target_ = OriginForm(req_.target);
  if (target_.starts_with('?')) {  // "http://host?q"
    target_buf_ = fmt::format("/{}", target_);
    target_ = target_buf_;
  } else if (req_.method == "OPTIONS" && target_ == "/" && !req_.target.starts_with('/') &&
             req_.target.find('/', req_.target.find("://") + 3) == std::string_view::npos) {
    // "OPTIONS http://host": an empty path is the server itself, "*" (RFC 9112 §3.2.4).
    target_ = "*";
  }
  if (!Normalize()) return 400;
  if (settings_->mail_mode != http::MailMode::kBoth && target_ != "*") {
    http::ModeRedirect m =
        http::MailModeRedirect(settings_->mail_mode, settings_->https, req_, target_,
                               HostForRedirect(), settings_->mail_mode_port);
    if (m.status != 0) {
      redirect_status_ = m.status;
      redirect_to_ = std::move(m.location);
      return 0;
    }
  }
  if (settings_->servers.empty()) return 0;
  const int found = settings_->hosts.Find(req_.host);
  if (found < 0) return 400;  // strict_hosts: a Host no server names
  server_ = &settings_->servers[static_cast<size_t>(found)];
  const HttpVirtualServer& vs = *server_;
  if (vs.upstream_index >= 0) group_index_ = vs.upstream_index;
  const std::string_view scheme = settings_->https ? "https" : "http";
  if (!vs.rewrites.empty()) {
    std::string rewritten;
    const http::RewriteResult r =
        vs.rewrites.Apply(target_, {scheme, HostForRedirect(), target_}, &rewritten);
    if (r.redirect_status != 0) {
      redirect_status_ = r.redirect_status;
      redirect_to_ = std::move(rewritten);
      return 0;
    }
    if (r.changed) {
      target_buf_ = std::move(rewritten);
      target_ = target_buf_;
      // A capture may have joined "x.." to a "/" before it: the result is judged too.
      if (!Normalize()) return 400;
    }
  }
  const int at = vs.matcher.Match(http::TargetPath(target_));
  if (at < 0) return 0;
  location_ = &vs.locations[static_cast<size_t>(at)];
  if (location_->upstream_index >= 0) group_index_ = location_->upstream_index;
  if (location_->upstream_timeout_ms > 0) upstream_timeout_ms_ = location_->upstream_timeout_ms;
  if (location_->route_by_user >= 0) route_by_user_ = location_->route_by_user == 1;
  if (location_->node_from_path) return PinNode();
  if (location_->redirect_status != 0) {
    redirect_status_ = location_->redirect_status;
    redirect_to_ =
        http::ExpandVariables(location_->redirect_to, {scheme, HostForRedirect(), target_});
    http::SafeRelativeLocation(&redirect_to_);
  }
  return 0;
}

bool HttpSession::Normalize() {
  std::string normal;
  switch (http::NormalizePath(target_, &normal)) {
    case http::PathForm::kUnchanged:
      return true;
    case http::PathForm::kNormalized:
      target_buf_ = std::move(normal);
      target_ = target_buf_;
      return true;
    case http::PathForm::kAboveRoot:
    case http::PathForm::kBadEscape:
      return false;
  }
  return false;
}

int HttpSession::PinNode() {
  std::string_view node = http::TargetPath(target_).substr(location_->prefix.size());
  node = node.substr(0, node.find('/'));
  const std::vector<UpstreamServerConfig>& servers = balancer()->config().servers;
  for (size_t i = 0; i < servers.size(); ++i) {
    if (!node.empty() && servers[i].id == node) {
      pinned_ = static_cast<int>(i);
      pin_only_ = true;
      route_ = "node";
      // The node's server is asked without <prefix><node>, as Zimbra's
      // `rewrite /docs/<id>/(.*) /$1` does: "/docs/doc2/x?y" -> "/x?y".
      const std::string_view path = http::TargetPath(target_);
      const std::string_view rest = path.substr(location_->prefix.size() + node.size());
      std::string stripped(rest.empty() ? "/" : rest);
      stripped.append(target_.substr(path.size()));
      target_buf_ = std::move(stripped);
      target_ = target_buf_;
      return 0;
    }
  }
  RP_LOG(kInfo, "{}: client {}: {} {}: no server of '{}' has id '{}'", listener_->name,
         peer_.ToString(), req_.method, LoggedTarget(), balancer()->config().name, node);
  return 404;
}

void HttpSession::LearnLocalAddress() {
  if (!server_addr_.empty()) return;
  if (std::optional<SocketAddress> local = LocalAddress(client_.fd())) {
    server_addr_ = local->ToString();
    // As a URL's host: an IPv6 address in brackets.
    server_ip_ =
        local->family() == AF_INET6 ? "[" + local->HostString() + "]" : local->HostString();
  }
}

std::string_view HttpSession::HostForRedirect() {
  if (!req_.host.empty()) return req_.host;
  LearnLocalAddress();  // HTTP/1.0 without Host: the address it came to (nginx: $host)
  return server_ip_;
}

Task<void> HttpSession::Redirect() {
  status_ = redirect_status_;
  // A body the client may still send is not read: the connection closes after this,
  // reading a while first so that the body's arrival does not reset the answer away.
  if (req_.semantics.body != BodyKind::kNone) {
    client_keep_alive_ = false;
    linger_ = true;
  }
  std::string out =
      fmt::format("HTTP/1.1 {} {}\r\nDate: {}\r\nLocation: {}\r\nContent-Length: 0\r\n", status_,
                  ReasonOf(status_), HttpDateNow(), redirect_to_);
  if (!client_keep_alive_) {
    out += "Connection: close\r\n";
  } else if (req_.version_minor == 0) {
    out += "Connection: keep-alive\r\n";  // else a 1.0 client takes the close for the end
  }
  if (!request_id_.empty()) out += fmt::format("X-Request-ID: {}\r\n", request_id_);
  out += "\r\n";
  bytes_out_ += out.size();
  IoResult w = co_await WriteAll(down_, AsBytes(out), SendDeadline());
  if (!w.ok()) client_keep_alive_ = false;
}

Task<void> HttpSession::RouteByUser() {
  const http::UserRoute found = http::FindUserRoute(req_, target_, settings_->admin_console);
  if (found.by == http::RouteBy::kNone) co_return;
  // A zx lookup is by account id (Zimbra's zmauth_zx reads the auth token): a name in
  // the path would find the user's web route, which is no zx server.
  const bool zx = location_ != nullptr && location_->zx;
  if (zx && found.by != http::RouteBy::kZimbraId) co_return;
  user_ = found.user;
  const UpstreamGroupConfig& group = balancer()->config();
  ResolveRequest request;
  request.method =
      found.by == http::RouteBy::kUsername ? AuthMethod::kUsername : AuthMethod::kZimbraId;
  request.login = found.user;
  request.protocol =
      group.extensions.Get<TlsUpstreamConfig>(kTlsTable) != nullptr ? "httpssl" : "http";
  request.client_ip = client_ip_;
  // Read at the first user route, whichever of the listener and a location asked for it.
  if (local_ip_.empty()) {
    if (std::optional<SocketAddress> local = LocalAddress(client_.fd())) {
      local_ip_ = local->HostString();
    }
  }
  request.local_ip = local_ip_;
  request.web = true;
  request.vhost = std::string(req_.host);
  request.admin = settings_->admin_console;
  request.zx = zx;
  request.login_attempt = 0;
  // The lookup runs as its own task, so that Stop() ends this wait at once.
  auto pending = std::make_shared<PendingRoute>();
  pending_route_ = pending.get();
  Spawn(ResolveDetached(snapshot_, std::move(request), pending, snapshot_->retire_gate->Enter()));
  if (!stopped_) co_await pending->done.Wait();
  pending_route_ = nullptr;
  if (stopped_) co_return;
  const ResolveResult& result = pending->result;
  if (result.status != ResolveStatus::kOk) {
    route_ = result.status == ResolveStatus::kLoginFailed ? "unknown" : "unavailable";
    co_return;
  }
  route_ = RouteSourceName(result.source);
  // Honoured only when the route names a member of the group (Zimbra's zmauth rule):
  // by address, or by the name and port as the group's server was written.
  const std::optional<SocketAddress> numeric =
      SocketAddress::FromNumeric(result.server, result.port);
  const std::string written = fmt::format("{}:{}", result.server, result.port);
  // A name with several addresses is several members: the first that is not down.
  const int64_t now = MonotonicNowNs();
  int first = -1;
  for (size_t i = 0; i < group.servers.size(); ++i) {
    const UpstreamServerConfig& server = group.servers[i];
    if ((numeric && *numeric == server.address) || server.text == written ||
        server.text.starts_with(written + " ")) {
      if (first < 0) first = static_cast<int>(i);
      if (!balancer()->IsDown(static_cast<uint32_t>(i), now)) {
        pinned_ = static_cast<int>(i);
        co_return;
      }
    }
  }
  pinned_ = first;  // all down (or none): the first, which goes first only when all are
  if (first < 0) route_ = "not-in-group";
}

Task<Flow> HttpSession::ReadBodyStart() {
  const http::Semantics& sem = req_.semantics;
  body_.clear();
  body_complete_ = sem.body == BodyKind::kNone;
  req_chunks_.Reset();
  if (body_complete_) co_return Flow::kOk;
  if (req_.expect_continue && in_.buffered() == 0) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    IoResult c = co_await WriteAll(down_, AsBytes(kContinue), SendDeadline());
    if (!c.ok()) co_return stopped_ ? Flow::kStopped : Flow::kSinkError;
    bytes_out_ += kContinue.size();
  }
  const uint64_t want = sem.body == BodyKind::kLength
                            ? std::min<uint64_t>(sem.content_length, kBufferBody)
                            : kBufferBody;
  while (body_.size() < want && !req_chunks_.done()) {
    std::string_view avail = in_.Peek();
    if (avail.empty()) {
      IoResult r = co_await in_.Fill(Deadline::AfterMs(settings_->body_timeout_ms));
      if (r.res > 0) continue;
      co_return stopped_ ? Flow::kStopped : FlowOfRead(r);
    }
    size_t used = 0;
    const size_t had = body_.size();
    if (sem.body == BodyKind::kLength) {
      used = std::min<size_t>(avail.size(), static_cast<size_t>(want - body_.size()));
      body_.append(avail.substr(0, used));
    } else {
      while (used < avail.size() && !req_chunks_.done()) {
        const http::ChunkedDecoder::Step step = req_chunks_.Next(avail.substr(used));
        if (req_chunks_.failed()) co_return Flow::kBadFraming;
        if (step.consumed == 0) break;
        used += step.consumed;
        body_.append(step.data);
      }
    }
    in_.Consume(used);
    bytes_in_ += body_.size() - had;  // counted as it comes: the body may break off
    if (settings_->max_body_bytes != 0 && body_.size() > settings_->max_body_bytes) {
      co_return Flow::kTooLarge;
    }
  }
  body_complete_ =
      sem.body == BodyKind::kLength ? body_.size() == sem.content_length : req_chunks_.done();
  co_return Flow::kOk;
}

Task<Flow> HttpSession::SendRequest() {
  const http::Semantics& sem = req_.semantics;
  http::ForwardRequest f;
  f.target = target_;
  f.host = req_.host;
  if (f.host.empty()) {  // HTTP/1.0 without Host: the address it came to, as nginx sends
    LearnLocalAddress();
    f.host = server_addr_;
  }
  if (settings_->admin_console) {
    // Zimbra's admin proxy: Host names the mailbox's admin port (7071), from which the
    // console builds its URLs; the Locations that come back are mapped to this
    // listener (RewriteLocation).
    const size_t colon = upstream_text_.rfind(':');
    if (colon != std::string::npos) {
      admin_host_.assign(http::HostWithoutPort(f.host));
      admin_host_.append(upstream_text_, colon);
      f.host = admin_host_;
    }
  }
  // A body read whole goes with its length (a chunked one too); a longer one keeps
  // its framing and streams.
  f.body = sem.body == BodyKind::kNone ? BodyKind::kNone
                                       : (body_complete_ ? BodyKind::kLength : sem.body);
  f.content_length = body_complete_ ? body_.size() : sem.content_length;
  if (f.body == BodyKind::kNone && sem.length_field) {
    f.body = BodyKind::kLength;  // "Content-Length: 0" goes on, as nginx sends it
    f.content_length = 0;
  }
  f.upgrade = http::TunnelsUpgrade(req_);
  f.client_ip = client_ip_;
  f.trusted_peer = std::any_of(settings_->trusted_proxies.begin(), settings_->trusted_proxies.end(),
                               [&](const Cidr& c) { return c.Contains(client_ip_); });
  f.scheme = settings_->https ? "https" : "http";
  f.request_id = request_id_;
  f.rules = server_ == nullptr ? nullptr : &server_->request_headers;
  out_.clear();
  http::WriteRequestHead(req_, f, &out_);
  if (f.body == BodyKind::kChunked) {
    if (!body_.empty()) AppendChunk(body_, &out_);
  } else {
    out_.append(body_);
  }
  Flow w = co_await Deliver(up_->stream(), out_);
  if (w != Flow::kOk) co_return w;
  if (!body_complete_) {
    // Only the body's first part is sent: the rest streams, re-framed as it came.
    uint64_t moved = 0;
    bool prefix_tried = false;  // no prefix here
    Flow body = co_await MoveBody(
        &in_, up_->stream(), sem.body, sem.content_length - body_.size(), sem.body,
        settings_->body_timeout_ms,
        settings_->max_body_bytes == 0 ? kNoLimit : settings_->max_body_bytes - body_.size(),
        &moved, &req_chunks_, {}, &prefix_tried);
    bytes_in_ += moved;
    // The upstream must not take a cut body for a whole one: it saw no last chunk
    // or too few bytes, and its connection is closed.
    co_return body;
  }
  IoResult flushed = co_await up_->stream()->Flush(SendDeadline());
  co_return SinkFlow(flushed);
}

Task<void> HttpSession::Tunnel() {
  PumpOptions options;
  options.idle_timeout_ms = listener_->idle_timeout_ms;
  options.send_timeout_ms = listener_->send_timeout_ms;
  options.mode = listener_->relay;
  Pump pump(down_, up_->stream(),
            PumpResources{services_->pipes, services_->buffers, services_->sweeper}, options);
  pump_ = &pump;
  if (stopped_) pump.Stop();
  PumpResult result = co_await pump.Run();
  pump_ = nullptr;
  CountPumpEnd(*services_->metrics, result);
  bytes_in_ += result.bytes_to_upstream;
  bytes_out_ += result.bytes_to_downstream;
  end_ = PumpEndName(result.end);
  tunnel_stopped_ = result.end == PumpEnd::kStopped;
}

void HttpSession::ResetRequestState() {
  status_ = 0;
  bytes_in_ = bytes_out_ = 0;
  connected_ns_ = header_ns_ = 0;
  upstream_text_.clear();
  reused_ = false;
  end_ = "ok";
  user_.clear();
  route_ = "-";
  pinned_ = -1;
  pin_only_ = false;
}

Task<bool> HttpSession::Exchange() {
  ShardMetrics& metrics = *services_->metrics;
  metrics.http_requests.Add();
  ++requests_;
  ResetRequestState();
  // The exchange waits on the upstream: what the client sent behind this head (a
  // pipelined request, a TLS record) must not pin the shard's receive buffers meanwhile.
  down_->Detach();
  if (settings_->request_id) {
    NextRequestId(&request_id_);
  } else {
    request_id_.clear();
  }
  const http::Semantics& sem = req_.semantics;
  client_keep_alive_ =
      sem.keep_alive && !draining_ && requests_ < static_cast<uint64_t>(settings_->max_requests);

  int refuse = 0;
  if (req_.expect_other) {
    refuse = 417;
  } else if (http::HasEncodedCrLf(req_.target)) {
    refuse = 403;
  } else if (req_.method == "CONNECT" || req_.method == "TRACE") {
    // TRACE would echo the client's cookies back to a script (cross-site tracing);
    // nginx refuses it too.
    refuse = 405;
  } else if (settings_->max_body_bytes != 0 && sem.body == BodyKind::kLength &&
             sem.content_length > settings_->max_body_bytes) {
    refuse = 413;
  }
  if (refuse == 0) refuse = ChooseRoute();
  if (refuse != 0) {
    metrics.http_refused.Add();
    RP_LOG(kInfo, "{}: client {}: {} {} refused with {}", listener_->name, peer_.ToString(),
           req_.method, LoggedTarget(), refuse);
    end_ = "refused";
    co_await Answer(refuse);
    co_return false;
  }

  if (redirect_status_ != 0) {
    co_await Redirect();
    co_return client_keep_alive_;
  }
  const Flow pre = co_await ReadBodyStart();
  if (pre != Flow::kOk) {
    end_ = FlowName(pre);
    const int status = pre == Flow::kTimeout      ? 408
                       : pre == Flow::kBadFraming ? 400
                       : pre == Flow::kTooLarge   ? 413
                                                  : 0;
    if (status != 0) {
      metrics.http_bad_requests.Add();
      RP_LOG(kInfo, "{}: client {}: {} {}: request body {}: {}", listener_->name, peer_.ToString(),
             req_.method, LoggedTarget(), FlowName(pre), status);
      co_await Answer(status);
    }
    co_return false;
  }
  const bool replayable = body_complete_ && Idempotent(req_.method);
  if (route_by_user_ && !pin_only_ && snapshot_->routes != nullptr) {
    co_await RouteByUser();
    if (stopped_) {
      end_ = FlowName(Flow::kStopped);
      co_return false;
    }
  }
  const bool head_request = req_.method == "HEAD";
  const bool upgrade = http::TunnelsUpgrade(req_);
  Inbound up_in(nullptr);
  http::ResponseParser rparser;  // the upstream's limits are the defaults
  bool early_answer = false;
  failed_servers_.clear();
  // What an early answer changes is put back when the request goes to another server:
  // the client saw nothing of the attempt that failed.
  const bool keep_alive_asked = client_keep_alive_;
  const bool linger_before = linger_;
  for (int attempt = 0;; ++attempt) {
    const int acquired = co_await Acquire(attempt == 0);
    if (acquired != 0) {
      if (acquired > 0) {
        metrics.http_upstream_errors.Add();
        end_ = "no-upstream";
        co_await Answer(acquired);
      } else {
        end_ = FlowName(Flow::kStopped);
      }
      co_return false;
    }
    if (reused_) metrics.http_upstream_reused.Add();
    sink_timed_out_ = false;
    Flow sent = co_await SendRequest();
    const bool send_timed_out = sent == Flow::kSinkError && sink_timed_out_;
    if (sent == Flow::kSinkError && reused_ && replayable) {
      Release(false);
      continue;
    }
    // An upstream may answer before it takes the whole body (a 413 or a 401) and close
    // or stop reading (RFC 9112 §9.5): that answer, already received, goes to the client
    // rather than a 502. The rest of the request body is not read: the client closes.
    early_answer = sent == Flow::kSinkError && !stopped_;
    if (early_answer) {
      client_keep_alive_ = false;
      linger_ = true;
    } else if (sent != Flow::kOk) {
      // A streamed body that broke off: the upstream saw it cut, and its connection goes.
      end_ = FlowName(sent);
      Release(false);
      const bool body_started = !body_complete_ && sent != Flow::kSinkError;
      const int status = sent == Flow::kSinkError    ? 502
                         : sent == Flow::kTimeout    ? 408
                         : sent == Flow::kBadFraming ? 400
                         : sent == Flow::kTooLarge   ? 413
                                                     : 0;
      if (status == 502) metrics.http_upstream_errors.Add();
      if (body_started) metrics.http_bad_requests.Add();
      if (status != 0) co_await Answer(status);
      co_return false;
    }
    // The response head, past any 100 the upstream sends.
    up_in = Inbound(up_->stream());
    resp_buf_.clear();
    rparser.Reset();
    ParseStatus st = ParseStatus::kIncomplete;
    bool got_any = false;
    Flow failed = Flow::kOk;
    int interims = 0;
    std::string_view head_error;  // the proxy's own reason to refuse the head
    // A client that leaves now cannot be answered: notice it (its socket's receive is
    // armed), unless it pipelined more (then it is still there, as for nginx).
    client_.WatchPeerEnd(this);
    // One deadline for the whole head, not one per read: an upstream trickling a byte
    // at a time does not hold the request past it. An interim response starts a new one.
    const int64_t head_wait_ms = early_answer
                                     ? std::min<int64_t>(upstream_timeout_ms_, kEarlyAnswerMs)
                                     : upstream_timeout_ms_;
    Deadline head_deadline = Deadline::AfterMs(head_wait_ms);
    while (st != ParseStatus::kDone) {
      std::string_view avail = up_in.Peek();
      if (avail.empty()) {
        IoResult r = co_await up_in.Fill(head_deadline);
        if (r.res > 0) continue;
        failed = stopped_ ? Flow::kStopped : FlowOfRead(r);
        break;
      }
      got_any = true;
      resp_buf_.append(avail);
      up_in.Consume(avail.size());
      st = rparser.Parse(resp_buf_, head_request, &resp_);
      // Interim responses, however many came in one read: a 100 is the proxy's to give
      // (it answered the client's expectation itself); a 102 or 103 goes on to an
      // HTTP/1.1 client (RFC 9110 §15.2). The final response follows on this connection.
      while (st == ParseStatus::kDone && resp_.status < 200 && resp_.status != 101) {
        if (++interims > kMaxInterimResponses) {  // each interim starts a new head deadline
          st = ParseStatus::kError;
          head_error = "too many interim (1xx) responses";
          break;
        }
        if (resp_.status != 100 && req_.version_minor >= 1) {
          http::ForwardResponse interim;
          interim.interim = true;
          interim.rules = server_ == nullptr ? nullptr : &server_->response_headers;
          out_.clear();
          http::WriteResponseHead(resp_, interim, &out_);
          IoResult w = co_await WriteAll(down_, AsBytes(out_), SendDeadline());
          if (!w.ok()) {
            failed = stopped_ ? Flow::kStopped : Flow::kSinkError;
            break;
          }
          bytes_out_ += out_.size();
        }
        resp_buf_.erase(0, rparser.head_bytes());
        rparser.Reset();
        head_deadline = Deadline::AfterMs(head_wait_ms);
        st = resp_buf_.empty() ? ParseStatus::kIncomplete
                               : rparser.Parse(resp_buf_, head_request, &resp_);
      }
      if (st == ParseStatus::kError || failed != Flow::kOk) break;
    }
    client_.WatchPeerEnd(nullptr);
    if (client_left_ && !stopped_) {
      Release(false);
      status_ = 499;
      end_ = "client-closed";
      RP_LOG(kInfo, "{}: client {}: closed the connection while upstream {} had not answered",
             listener_->name, peer_.ToString(), upstream_text_);
      co_return false;
    }
    // Closed or reset before any answer (nothing went to the client yet).
    const bool broke_off =
        (failed == Flow::kEof || failed == Flow::kError) && !got_any && !send_timed_out;
    // On a new connection the server is failing and counts against max_fails, whether
    // or not the request may go again (as in nginx). A pooled one was closed by the
    // server as the request went out: the next attempt connects afresh.
    if (broke_off && !reused_) balancer()->ReportFailure(up_->server, MonotonicNowNs());
    if (broke_off && replayable) {
      if (!reused_) {
        // The next server, as nginx's proxy_next_upstream error does.
        RP_LOG(kWarn, "{}: client {}: upstream {} {} before answering; trying another server",
               listener_->name, peer_.ToString(), upstream_text_, FlowName(failed));
        failed_servers_.push_back(up_->server);
      }
      Release(false);
      client_keep_alive_ = keep_alive_asked;
      linger_ = linger_before;
      continue;
    }
    if (early_answer && (failed != Flow::kOk || st == ParseStatus::kError)) {
      // No answer behind the failed send: the upstream broke off (as before §9.5).
      Release(false);
      if (failed == Flow::kStopped) co_return false;
      metrics.http_upstream_errors.Add();
      // An upstream that stopped taking the request timed out, as nginx's 504 says.
      if (send_timed_out) {
        end_ = "send-timeout";
        RP_LOG(kWarn, "{}: client {}: upstream {} took no request bytes for {} ms: 504",
               listener_->name, peer_.ToString(), upstream_text_, listener_->send_timeout_ms);
      } else {
        end_ = FlowName(Flow::kSinkError);
      }
      co_await Answer(send_timed_out ? 504 : 502);
      co_return false;
    }
    if (failed != Flow::kOk || st == ParseStatus::kError) {
      Release(false);
      if (failed == Flow::kStopped) co_return false;
      if (failed == Flow::kSinkError) {  // the client left while an interim went out
        end_ = FlowName(failed);
        co_return false;
      }
      metrics.http_upstream_errors.Add();
      const int status = failed == Flow::kTimeout ? 504 : 502;
      RP_LOG(kWarn, "{}: client {}: upstream {} {}: {} {}", listener_->name, peer_.ToString(),
             upstream_text_,
             st == ParseStatus::kError ? "sent a bad response head" : "gave no response head",
             st != ParseStatus::kError ? FlowName(failed)
             : head_error.empty()      ? rparser.error()
                                       : head_error,
             status);
      end_ = st == ParseStatus::kError ? "bad-upstream-response" : FlowName(failed);
      co_await Answer(status);
      co_return false;
    }
    break;
  }
  header_ns_ = TurnNowNs();
  balancer()->ReportSuccess(up_->server);
  up_in.Keep(std::string_view(resp_buf_).substr(rparser.head_bytes()));
  status_ = resp_.status;

  if (resp_.status == 101) {
    // Only the WebSocket asked for is tunnelled: a 101 to anything else is refused.
    if (!upgrade || early_answer || resp_.semantics.upgrade_repeated ||
        !EqualsIgnoreCase(TrimOws(resp_.semantics.upgrade), "websocket")) {
      Release(false);
      metrics.http_upstream_errors.Add();
      end_ = "unasked-101";
      co_await Answer(502);
      co_return false;
    }
    http::ForwardResponse fr;
    fr.upgrade = true;
    fr.date = HttpDateNow();
    fr.client_version_minor = req_.version_minor;
    fr.rules = server_ == nullptr ? nullptr : &server_->response_headers;
    out_.clear();
    http::WriteResponseHead(resp_, fr, &out_);
    bytes_out_ += out_.size();
    // Bytes either side sent behind its head go before the pump takes over.
    const std::string_view up_early = up_in.Peek().substr(0, up_in.kept());
    out_.append(up_early);
    bytes_out_ += up_early.size();
    up_in.Consume(up_in.kept());
    IoResult w = co_await WriteAll(down_, AsBytes(out_), SendDeadline());
    std::string early(in_.Peek().substr(0, in_.kept()));
    in_.Consume(early.size());
    bytes_in_ += early.size();
    if (w.ok() && !early.empty())
      w = co_await WriteAll(up_->stream(), AsBytes(early), SendDeadline());
    if (w.ok()) co_await Tunnel();
    Release(false);
    co_return false;
  }

  // The body as the client gets it: chunked or a length as the upstream framed it, an
  // unframed body chunked for an HTTP/1.1 client, else delimited by the close.
  const BodyKind up_body = resp_.semantics.body;
  BodyKind client_body = up_body;
  if ((up_body == BodyKind::kChunked || up_body == BodyKind::kUntilClose) &&
      req_.version_minor == 0) {
    client_body = BodyKind::kUntilClose;
    client_keep_alive_ = false;
  } else if (up_body == BodyKind::kUntilClose) {
    client_body = BodyKind::kChunked;
  }
  client_keep_alive_ = client_keep_alive_ && !draining_;  // a drain may have begun meanwhile
  http::ForwardResponse fr;
  fr.body = client_body;
  fr.date = HttpDateNow();
  fr.content_length = resp_.semantics.content_length;
  fr.client_version_minor = req_.version_minor;
  fr.keep_alive = client_keep_alive_;
  fr.rules = server_ == nullptr ? nullptr : &server_->response_headers;
  if (settings_->https) {
    // Without a Host, the address the client came to, its port included.
    fr.https_host = HostForRedirect();
    if (req_.host.empty()) fr.https_host = server_addr_;
    fr.upstream = upstream_text_;
  }
  out_.clear();
  http::WriteResponseHead(resp_, fr, &out_);
  const uint64_t out_before_head = bytes_out_;
  bytes_out_ += out_.size();
  // Until this body ends whole, any end of the connection must be a reset: without TLS
  // only that tells an HTTP/1.0 client its close-delimited body is cut (a FIN would pass
  // it off as whole), whoever gives up on it (upstream, client, a stop).
  cut_needs_reset_ = client_body == BodyKind::kUntilClose && client_tls_ == nullptr;
  Flow moved_ok = Flow::kOk;
  bool head_tried = true;  // what went to the client may include the head
  if (up_body == BodyKind::kNone) {
    IoResult w = co_await WriteAll(down_, AsBytes(out_), SendDeadline());
    if (!w.ok()) moved_ok = stopped_ ? Flow::kStopped : Flow::kSinkError;
  } else {
    uint64_t moved = 0;
    resp_chunks_.Reset();
    moved_ok =
        co_await MoveBody(&up_in, down_, up_body, resp_.semantics.content_length, client_body,
                          upstream_timeout_ms_, kNoLimit, &moved, &resp_chunks_, out_, &head_tried);
    bytes_out_ += moved;
  }
  const bool upstream_reusable = moved_ok == Flow::kOk && resp_.semantics.keep_alive &&
                                 up_body != BodyKind::kUntilClose && up_in.kept() == 0 &&
                                 !early_answer;
  if (early_answer && moved_ok == Flow::kOk) end_ = "early-answer";
  Release(upstream_reusable);
  if (moved_ok == Flow::kOk) cut_needs_reset_ = false;
  if (moved_ok == Flow::kSinkError && cut_needs_reset_) {
    client_.ResetOnClose();
    client_.Abort();  // now: the client takes nothing, a flush at the close would wait
  }
  if (moved_ok != Flow::kOk) {
    end_ = FlowName(moved_ok);
    if (moved_ok != Flow::kSinkError && moved_ok != Flow::kStopped) {
      metrics.http_upstream_errors.Add();
      // Failed in the bytes that came with the head (bad framing): nothing went to the
      // client yet, so it is told, as for a bad head.
      const bool answer = !head_tried;
      RP_LOG(kWarn, "{}: client {}: upstream {} response body ended: {}; {}", listener_->name,
             peer_.ToString(), upstream_text_, FlowName(moved_ok),
             answer ? "502" : "closing the client");
      if (answer) {
        bytes_out_ = out_before_head;
        cut_needs_reset_ = false;  // nothing went out: the 502 is whole
        co_await Answer(502);
      } else {
        // A body delimited by our close (HTTP/1.0 client) must not end as if whole:
        // over TLS, no close_notify (a chunked client misses the last chunk).
        cut_ = true;
      }
    }
    co_return false;
  }
  co_return client_keep_alive_;
}

void HttpSession::LogAccess() {
  const LogConfig& lc = snapshot_->config->log;
  if (!lc.access) return;
  const int64_t now = TurnNowNs();
  auto ms = [&](int64_t at) -> double {
    return at == 0 ? -1.0 : static_cast<double>(at - start_ns_) / 1e6;
  };
  const std::string_view upstream =
      upstream_text_.empty() ? std::string_view("-") : std::string_view(upstream_text_);
  std::string target_buf;  // a target with tokens, redacted
  const std::string_view target =
      http::WithoutTokens(req_.target, &target_buf) ? std::string_view(target_buf) : req_.target;
  if (lc.access_format == AccessFormat::kKv) {
    log::AccessLine(
        "access http listener={} client={} host={} method={} target={} status={} in={} out={} "
        "upstream={} reused={} connect_ms={:.3f} header_ms={:.3f} total_ms={:.3f} request_id={} "
        "user={} route={} end={}{}",
        listener_->name, peer_.ToString(), log::Word{req_.host}, log::Word{req_.method},
        log::Word{target}, status_, bytes_in_, bytes_out_, upstream, reused_ ? 1 : 0,
        ms(connected_ns_), ms(header_ns_), ms(now), request_id_.empty() ? "-" : request_id_,
        log::Word{user_.empty() ? "-" : user_}, route_, end_, TlsSummary(client_tls_.get()));
    return;
  }
  auto field = [&](std::string_view name) -> std::string_view {
    for (const http::Field& f : req_.fields) {
      if (EqualsIgnoreCase(f.name, name)) return f.value;
    }
    return {};
  };
  // A page opened by a link with a token sends that link as its requests' Referer.
  std::string referer_buf;
  const std::string_view referer =
      http::WithoutTokens(field("referer"), &referer_buf) ? referer_buf : field("referer");
  std::string line;
  line.reserve(512);
  if (lc.access_format == AccessFormat::kJson) {
    auto str = [&](std::string_view key, std::string_view value) {
      line += fmt::format(",\"{}\":", key);
      AppendJsonString(&line, value);
    };
    line += "{\"time\":";
    AppendJsonString(&line, log::UtcStamp());
    str("listener", listener_->name);
    str("client", peer_.ToString());
    line += fmt::format(",\"tls\":{}", client_tls_ != nullptr ? "true" : "false");
    str("host", req_.host);
    str("method", req_.method);
    str("target", target);
    line += fmt::format(",\"status\":{},\"bytes_in\":{},\"bytes_out\":{}", status_, bytes_in_,
                        bytes_out_);
    str("upstream", upstream);
    line += fmt::format(",\"reused\":{}", reused_ ? "true" : "false");
    line += fmt::format(",\"connect_ms\":{:.3f},\"header_ms\":{:.3f},\"total_ms\":{:.3f}",
                        ms(connected_ns_), ms(header_ns_), ms(now));
    str("request_id", request_id_);
    str("user", user_);
    str("route", route_);
    str("end", end_);
    str("referer", referer);
    str("user_agent", field("user-agent"));
    line += "}\n";
  } else {
    // nginx's combined format, then upstream, its times and the request id.
    auto quoted = [&](std::string_view v) {
      line.push_back('"');
      if (v.empty()) line.push_back('-');
      for (char ch : v) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
          line += fmt::format("\\x{:02X}", c);
        } else {
          line.push_back(ch);
        }
      }
      line.push_back('"');
    };
    // The client's address alone, as nginx's $remote_addr: combined-log readers take the
    // first field for a host.
    line += fmt::format("{} - {} [{}] ", peer_.HostString(), log::Word{user_.empty() ? "-" : user_},
                        log::CommonLogStamp());
    quoted(fmt::format("{} {} HTTP/1.{}", req_.method, target, req_.version_minor));
    line += fmt::format(" {} {} ", status_, bytes_out_);
    quoted(referer);
    line.push_back(' ');
    quoted(field("user-agent"));
    // A time not reached is "-", as nginx's $upstream_connect_time.
    auto seconds = [&](int64_t at) {
      return at == 0 ? std::string("-") : fmt::format("{:.3f}", ms(at) / 1e3);
    };
    line += fmt::format(" \"{}\" {} {} {} ", upstream, seconds(now), seconds(connected_ns_),
                        seconds(header_ns_));
    quoted(req_.host);
    line += fmt::format(" {}\n", request_id_.empty() ? "-" : request_id_);
  }
  log::Access(line);
}

Task<void> HttpSession::Close() {
  Release(false);
  if (cut_needs_reset_ && !stopped_ && !down_->aborted()) {
    (void)co_await down_->Flush(SendDeadline());  // what was delivered goes first
    client_.ResetOnClose();
  } else if (!stopped_ && !down_->aborted()) {
    IoResult shut;  // not ?: with co_await in the arms (core/task.h)
    if (cut_) {
      shut = co_await down_->ShutdownWriteCut(SendDeadline());
    } else {
      shut = co_await down_->ShutdownWrite(SendDeadline());
    }
    if (shut.ok() && (linger_ || in_.buffered() > 0)) {
      // Lingering close: what the client still sends is read and dropped for a while.
      const Deadline linger = Deadline::AfterMs(kLingerMs);
      for (;;) {
        in_.Consume(in_.Peek().size());
        IoResult r = co_await in_.Fill(linger);
        if (r.res <= 0) break;
      }
    }
  }
  if (client_tls_ != nullptr) co_await client_tls_->Quiesce();
  co_await client_.Quiesce();
}

Task<void> HttpSession::Run() {
  client_ip_ = peer_.HostString();
  if (settings_->https) {
    const bool ok = co_await AcceptTls(services_, snapshot_.get(), listener_, &client_, peer_,
                                       &stopped_, &client_tls_);
    if (!ok) co_return;
    down_ = client_tls_.get();
    in_.set_stream(down_);
  }
  for (;;) {
    const int read = co_await ReadRequestHead();
    if (read < 0) break;
    if (read > 0) {
      start_ns_ = start_ns_ == 0 ? TurnNowNs() : start_ns_;
      services_->metrics->http_bad_requests.Add();
      RP_LOG(kInfo, "{}: client {}: bad request: {} ({})", listener_->name, peer_.ToString(), read,
             read == 408 ? std::string_view("request head timed out") : parser_.error());
      request_id_.clear();
      req_ = http::RequestHead();
      ResetRequestState();
      co_await Answer(read);
      end_ = "bad-request";
      LogAccess();
      break;
    }
    const bool again = co_await Exchange();
    if (stopped_ && end_ == "ok") end_ = "stopped";
    LogAccess();
    start_ns_ = 0;
    if (!again || stopped_) break;
  }
}

Task<void> HttpProxySession(ShardServices* services, SnapshotRef snapshot,
                            const ListenerConfig* listener, int client_fd, SocketAddress peer,
                            Gate::Holder /*holder*/) {
  ShardMetrics& metrics = *services->metrics;
  metrics.connections_active.Add();
  // On the heap: the session's buffers and parsers outlive many suspensions.
  auto session =
      std::make_unique<HttpSession>(services, std::move(snapshot), listener, client_fd, peer);
  {
    SessionRegistration registration(services, listener, session.get());
    co_await session->Run();
    co_await session->Close();
  }
  if (session->StoppedUncounted()) metrics.sessions_stopped.Add();
  metrics.connections_active.Sub();
}

ExtensionPtr ReadHttp(ConfigTable& t, const Config& so_far) {
  return ReadHttpListener(t, so_far, false);
}
ExtensionPtr ReadHttps(ConfigTable& t, const Config& so_far) {
  return ReadHttpListener(t, so_far, true);
}

}  // namespace

const ProtocolSpec kHttpProtocol = {"http", &ReadHttp, &HttpProxySession};
const ProtocolSpec kHttpsProtocol = {"https", &ReadHttps, &HttpProxySession};

}  // namespace ringproxy
