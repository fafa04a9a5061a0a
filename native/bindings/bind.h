// One generic N-API binder for every op in native/ops/: bind<&ops::rmsnorm>(env, exports, "rmsnorm",
// {"x", "weight", "eps", "out", "rstd"}) reads each JS argument as the C++ parameter's type asks:
//   const Tensor&               a tensor the op writes (its storage's version is bumped),
//   const ops::In&              a tensor the op only reads (version left alone: caches stay valid),
//   const std::optional<...>&   either of those, or null/undefined,
//   double / bool               a number / a boolean,
//   const ops::AdamWOptions&    an options object of numbers.
// The arguments are read into a braced tuple, so they are read left to right (a braced initializer
// list fixes the order) and the first bad argument is the one named. Every argument is read before
// the op runs: JS getters cannot run in the middle of an op.
#pragma once
#include <napi.h>

#include <array>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "bindings.h"
#include "ops/adamw.h"
#include "ops/check.h"
#include "ops/cross_entropy.h"

namespace pt {

template <class T>
struct ArgReader;

template <>
struct ArgReader<Tensor> {
  static Tensor read(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) { return arg_tensor(info, i, op, name); }
};
template <>
struct ArgReader<ops::In> {
  static ops::In read(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
    return ops::In{arg_input(info, i, op, name)};
  }
};
template <class T>
struct ArgReader<std::optional<T>> {
  static std::optional<T> read(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
    if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return std::nullopt;
    return ArgReader<T>::read(info, i, op, name);
  }
};
template <>
struct ArgReader<double> {
  static double read(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) { return arg_number(info, i, op, name); }
};
template <>
struct ArgReader<bool> {
  static bool read(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) { return arg_bool(info, i, op, name); }
};
template <>
struct ArgReader<ops::AdamWOptions> {
  static ops::AdamWOptions read(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
    if (i >= info.Length() || !info[i].IsObject()) throw OpError(std::string(op) + ": " + name + " must be an object");
    Napi::Object o = info[i].As<Napi::Object>();
    auto num = [&](const char* key) {
      Napi::Value x = o.Get(key);
      if (!x.IsNumber()) throw OpError(std::string(op) + ": option '" + key + "' must be a number");
      return x.As<Napi::Number>().DoubleValue();
    };
    // Braced, so the keys are read in this order.
    return ops::AdamWOptions{num("lr"), num("beta1"), num("beta2"), num("eps"), num("weightDecay"), num("step"), num("gradScale")};
  }
};

inline Napi::Value to_js(Napi::Env env, double v) { return Napi::Number::New(env, v); }

template <auto F, class Sig = decltype(F)>
struct Bound;

template <auto F, class R, class... A>
struct Bound<F, R (*)(A...)> {
  static constexpr size_t arity = sizeof...(A);
  // Set once by bind() (a function-local static: thread-safe when worker threads load the addon).
  static inline const char* op = nullptr;
  static inline std::array<const char*, sizeof...(A)> names{};

  template <size_t... I>
  static Napi::Value call(const Napi::CallbackInfo& info, std::index_sequence<I...>) {
    std::tuple<std::decay_t<A>...> args{ArgReader<std::decay_t<A>>::read(info, I, op, names[I])...};
    if constexpr (std::is_void_v<R>) {
      std::apply(F, args);
      return info.Env().Undefined();
    } else {
      return to_js(info.Env(), std::apply(F, args));
    }
  }
  static Napi::Value entry(const Napi::CallbackInfo& info) { return call(info, std::index_sequence_for<A...>{}); }
};

// The names array must name every parameter: a mismatch is a compile error, not a wrong message.
template <auto F, size_t N>
void bind(Napi::Env env, Napi::Object exports, const char* op, const char* const (&names)[N]) {
  using B = Bound<F>;
  static_assert(N == B::arity, "bind: name every parameter of the op, in order");
  static const bool once = [&] {
    B::op = op;
    for (size_t i = 0; i < N; i++) B::names[i] = names[i];
    return true;
  }();
  (void)once;
  exports.Set(op, Napi::Function::New(env, guarded<&B::entry>, op));
}

}  // namespace pt
