"""The baseline of issue 12: the kind of Flask app the "IPython-like server" article builds
(a namespace per id, exec() with sys.stdout swapped for everyone at once, no security, no
concurrency control), under Flask's threaded server. Written for the bench: never served
to anyone. Usage: flask_kernel.py PORT"""
import io
import sys
import traceback

from flask import Flask, jsonify, request

app = Flask(__name__)
envs = {}


@app.route("/env/create", methods=["POST"])
def create():
    envs[str(len(envs))] = {}
    return jsonify({"envs": list(envs)})


@app.route("/", methods=["POST"])
def run():
    env = envs.setdefault(request.form["id"], {})
    out, saved = io.StringIO(), sys.stdout
    sys.stdout = out
    try:
        exec(request.form["code"], env)
        return jsonify({"message": out.getvalue()})
    except Exception:  # noqa: BLE001 - what the baseline does
        return jsonify({"error": traceback.format_exc()})
    finally:
        sys.stdout = saved


if __name__ == "__main__":
    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print("ready", flush=True)
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
