{
  "targets": [
    {
      "target_name": "linkpoll",
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/pool.cc",
            "native/link_buffer.cc",
            "native/js_blocks.cc",
            "native/main_loop.cc",
            "native/socket_options.cc",
            "native/link_info.cc",
            "native/sub_loop.cc",
            "native/reactor.cc",
            "native/binding.cc"
          ]
        }, {
          "sources": ["native/unsupported.cc"]
        }]
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-lpthread"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
