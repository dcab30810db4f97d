"""scripts/layer-check on small made-up trees: a clean one passes, and each
rule fires on the one file that breaks it (so the `layers` test can fail)."""
import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(sys.argv[1], "scripts", "layer-check")

CLEAN = {
    "proto/pst_rec.h": "#include <stdint.h>\n",
    "proto/rec.c": '#include <stdio.h>\n#include "pst_rec.h"\nint f(char *b) { return snprintf(b, 2, "x"); }\n',
    "store/pst_store.h": '#include "pst_rec.h"\n',
    "store/store.c": '#include <sqlite3.h>\n#include "pst_store.h"\n',
    "dht/pst_dht.h": '#include "pst_rec.h"\n',
    "dht/dht.c": '#include <opendht_c.h>\n#include "pst_dht.h"\n',
    "dht/fake/pst_dht_fake.h": '#include "pst_dht.h"\n',
    "dht/types.cpp": '#include <opendht/dhtrunner.h>\n#include "pst_dht.h"\n',
    "proto/seal.c": "void s(void) { crypto_sign_seed_keypair(0, 0, 0); }\n",
    "node/core/pst_node_base.h": '#include "pst_store.h"\n',
    "node/pst_node.h": '#include "pst_node_base.h"\n#include "pst_request.h"\n',
    "node/control/pst_request.h": '#include "pst_node_base.h"\n',
    "node/core/pst_core.h": '#include "pst_node_base.h"\n#include "pst_dht.h"\n',
    "node/keys/pst_keys.h": '#include "pst_core.h"\n',
    "node/mail/pst_mail.h": '#include "pst_keys.h"\n',
    "node/mail/outbox_int.h": '#include "pst_mail.h"\n',
    "node/mail/outbox.c": '#include "outbox_int.h"\n',
    "node/control/pst_control.h": '#include "pst_mail.h"\n',
    "node/node.c": '#include "pst_control.h"\n',
    "tools/cli.c": '#include "pst_node.h"\n',
}

BROKEN = {  # file -> (content, words the complaint must contain)
    "node/core/up.c": ('#include "pst_keys.h"\n', "higher layer"),
    "node/keys/up.c": ('#include "pst_control.h"\n', "higher layer"),
    "store/side.c": ('#include "pst_dht.h"\n', "higher layer"),
    "node/control/priv.c": ('#include "outbox_int.h"\n', "private"),
    "tools/inside.c": ('#include "pst_mail.h"\n', "inside node"),
    "node/keys/sql.c": ("#include <sqlite3.h>\n", "only store"),
    "proto/clock.c": ("#include <time.h>\n", "pure"),
    "proto/rand.c": ("void g(unsigned char *b) { randombytes_buf(b, 4); }\n", "randombytes_buf"),
    "proto/thr.c": ("void h(void) { pthread_create(0, 0, 0, 0); }\n", "pthread_create"),
    "node/mail/big.c": ("int x;\n" * 700, "split it"),
    "node/core/angle.c": ("#include <pst_control.h>\n", "higher layer"),
    "tools/fake.c": ('#include "pst_dht_fake.h"\n', "fake DHT"),
    "node/core/mp.c": ("#include <msgpack/pack.h>\n", "only proto"),
    "node/core/cxx.cpp": ("#include <opendht/value.h>\n", "only dht"),
    "proto/keys.c": ("void k(void) { crypto_box_keypair(0, 0); }\n", "crypto_box_keypair"),
    "proto/file.c": ("void f(void) { unlink(0); }\n", "unlink"),
    "node/keys/face.c": ('#include "pst_node.h"\n', "higher layer"),
}


def write(root, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def run(root):
    p = subprocess.run([sys.executable, SCRIPT, root], capture_output=True, text=True)
    return p.returncode, p.stdout


def main():
    failures = []
    with tempfile.TemporaryDirectory() as root:
        write(root, CLEAN)
        rc, out = run(root)
        if rc != 0:
            failures.append(f"clean tree refused:\n{out}")
        for rel, (text, words) in BROKEN.items():
            write(root, {rel: text})
            rc, out = run(root)
            lines = [l for l in out.splitlines() if l.startswith(rel)]
            if rc != 1 or len(lines) != 1 or words not in lines[0]:
                failures.append(f"{rel}: expected one complaint with '{words}', got rc {rc}:\n{out}")
            os.remove(os.path.join(root, rel))
    for f in failures:
        print("FAIL", f)
    if failures:
        return 1
    print(f"PASS layer-check: the clean tree passes, {len(BROKEN)} rules each fire")
    return 0


if __name__ == "__main__":
    sys.exit(main())
