# Thin wrapper over the CMake presets. `make` builds build/changepipe (release with debug info).
JOBS ?= $(shell nproc)
.PHONY: all deps check demo bench clean

all:
	cmake --preset release >/dev/null
	cmake --build --preset release -j$(JOBS)
	@mkdir -p build && ln -sf release/changepipe build/changepipe

deps:
	@scripts/install-deps.sh

check: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j$(JOBS)
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j$(JOBS)
	ctest --preset release -j$(JOBS)
	ctest --preset asan -j$(JOBS)

demo: deps all
	build/changepipe demo

bench: all
	@for b in build/release/bench_*; do echo "== $$b"; $$b; done

clean:
	rm -rf build
