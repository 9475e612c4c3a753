{
  "targets": [
    {
      "target_name": "kniv",
      "sources": ["src/addon.cc", "src/iface.cc", "src/port.cc", "src/dataplane.cc", "src/offload.cc", "src/relay.cc", "src/relay_binding.cc", "src/binding_util.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../module"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-fexceptions", "-pthread"],
      "ldflags": ["-pthread"]
    }
  ]
}
