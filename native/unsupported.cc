// unsupported.cc - built on platforms without epoll, so that importing linkpoll says why it
// cannot work instead of failing to compile.
#include <napi.h>

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Error e = Napi::Error::New(env, "linkpoll needs Linux (epoll); this platform is not supported");
  e.Set("code", Napi::String::New(env, "ERR_LINKPOLL_UNSUPPORTED_PLATFORM"));
  throw e;
}

NODE_API_MODULE(linkpoll, Init)
