"""Results -> Markdown report with PNG plots (gnuplot). Medians with min-max over the
repeats; ratios against nginx and against a direct connection in the same run."""
import os
import shutil
import statistics
import subprocess

from harness.scenarios import SCENARIOS


def metric(result, key):
    v = result
    for part in key.split("."):
        if not isinstance(v, dict) or part not in v:
            return None
        v = v[part]
    return v


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 10000:
        return f"{v:,.0f}".replace(",", " ")
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def paired_ratio(rows, key):
    """ringproxy / nginx per repeat (each repeat runs every target once, in turn):
    median, min, max."""
    by_rep = {}
    for r in rows:
        v = metric(r, key)
        if r["target"] in ("ringproxy", "nginx") and v:
            by_rep.setdefault(r.get("rep"), {})[r["target"]] = v
    ratios = [d["ringproxy"] / d["nginx"] for d in by_rep.values() if len(d) == 2]
    if not ratios:
        return None, None, None
    return statistics.median(ratios), min(ratios), max(ratios)


def clean(result):
    """A run that counts: the load generator exited 0 and saw no error."""
    return result.get("loadgen_exit", 0) == 0 and result.get("errors_total", 0) == 0


def median_range(rows, key):
    vals = [metric(r, key) for r in rows if metric(r, key) is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


class Report:
    def __init__(self, out_dir, stamp, meta):
        self.out_dir = out_dir
        self.stamp = stamp
        self.meta = meta
        self.plots = []
        self.gnuplot = shutil.which("gnuplot")

    def _plot(self, name, script, datasets):
        """datasets: {file_name: text}; returns the PNG's file name or None."""
        if self.gnuplot is None:
            return None
        for fname, text in datasets.items():
            with open(os.path.join(self.out_dir, fname), "w") as f:
                f.write(text)
        png = f"{self.stamp}-{name}.png"
        full = ("set terminal pngcairo size 900,520 noenhanced font ',10'\n"
                f"set output '{png}'\nset grid\nset key outside right\n" + script)
        r = subprocess.run([self.gnuplot], input=full, text=True, cwd=self.out_dir,
                           capture_output=True, timeout=60)
        if r.returncode != 0 or not os.path.exists(os.path.join(self.out_dir, png)):
            # pngcairo may be missing in gnuplot-nox builds; fall back to png.
            full = full.replace("pngcairo", "png")
            r = subprocess.run([self.gnuplot], input=full, text=True, cwd=self.out_dir,
                               capture_output=True, timeout=60)
        return png if os.path.exists(os.path.join(self.out_dir, png)) else None

    def scenario_tables(self, results, targets):
        out = []
        cpu_bars = {}
        # A scaling run (--cores) is its own table, not a point of these.
        def plain(r):
            return not r.get("variant") and not r.get("cores")

        for name in [s for s in SCENARIOS if any(r["scenario"] == s and plain(r)
                                                  for r in results)]:
            spec = SCENARIOS[name]
            keys = spec["metrics"]
            rows_all = [r for r in results if r["scenario"] == name and plain(r)]
            out += [f"### {name}", "", spec["about"] + ".", "",
                    "| target | " + " | ".join(keys) + " | errors |",
                    "|---" * (len(keys) + 2) + "|"]
            med = {}
            for t in targets:
                rows = [r for r in rows_all if r["target"] == t]
                if not rows:
                    continue
                # Runs with errors are counted in the last column, and their numbers
                # (CPU of failed operations over fewer ops) kept out of the medians.
                good = [r for r in rows if clean(r)]
                cells = []
                for k in keys:
                    m, lo, hi = median_range(good, k)
                    med[(t, k)] = m
                    cells.append("-" if m is None else f"{fmt(m)} ({fmt(lo)}–{fmt(hi)})")
                label = t + (" (L4 relay)" if rows[0].get("layer4") else "")
                errors = sum(r.get("errors_total", 0) for r in rows)
                # A run killed or failed before it counted anything has no errors_total.
                failed = sum(1 for r in rows if not clean(r) and not r.get("errors_total"))
                errors = f"{errors} ({failed} runs failed)" if failed else str(errors)
                out.append(f"| {label} | " + " | ".join(cells) + f" | {errors} |")
                for k in ("target_cpu_us_per_op", "target_cpu_s_per_gib", "rss_per_conn"):
                    if k in keys and med.get((t, k)) is not None and t != "direct":
                        cpu_bars.setdefault(k, {}).setdefault(name, {})[t] = med[(t, k)]
            out.append("")
            for k in keys:
                r, n, d = med.get(("ringproxy", k)), med.get(("nginx", k)), med.get(("direct", k))
                parts = []
                if r is not None and n:
                    parts.append(f"ringproxy / nginx = **{r / n:.2f}**")
                if r is not None and d:
                    parts.append(f"ringproxy / direct = **{r / d:.2f}**")
                if parts:
                    out.append(f"- {k}: " + ", ".join(parts))
            out += self.negotiated_lines(rows_all, targets)
            out.append("")
        for k, per_scenario in cpu_bars.items():
            png = self._bar_plot(k, per_scenario, targets)
            if png:
                out += [f"![{k}]({png})", ""]
        return out

    @staticmethod
    def negotiated_lines(rows, targets):
        """TLS scenarios: what the handshakes settled on per target (version, suite,
        group), so that a reader sees both proxies did the same work."""
        out = []
        for t in targets:
            counts = {}
            for r in rows:
                if r["target"] == t:
                    for k, n in (metric(r, "tls.negotiated") or {}).items():
                        counts[k] = counts.get(k, 0) + n
            if counts:
                out.append(f"- {t} negotiated: " + "; ".join(
                    f"{k} ({n})" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])))
        return out

    def goal_table(self, results):
        """Ratios ringproxy / nginx next to what the issues ask for (scenarios' goals)."""
        rows = []
        for name, spec in SCENARIOS.items():
            # A run with errors says nothing about the goal: left out (the scenario
            # tables count them).
            sel = [r for r in results if r["scenario"] == name and not r.get("variant")
                   and not r.get("cores") and clean(r)]
            for key, op, goal in spec.get("goals", []):
                rp, _, _ = median_range([r for r in sel if r["target"] == "ringproxy"], key)
                ng, _, _ = median_range([r for r in sel if r["target"] == "nginx"], key)
                if rp is None or not ng:
                    continue
                ratio = rp / ng
                met = ratio >= goal if op == ">=" else ratio <= goal
                p, lo, hi = paired_ratio(sel, key)
                paired = "-" if p is None else f"{p:.2f} ({lo:.2f}–{hi:.2f})"
                rows.append(f"| {name} | {key} | {fmt(rp)} | {fmt(ng)} | **{ratio:.2f}** | "
                            f"{paired} | {op} {goal:g} | {'yes' if met else 'no'} |")
        if not rows:
            return []
        return ["## Goals: ringproxy / nginx", "",
                "Medians of this run. ops_per_core_s = operations per second of proxy CPU "
                "(what one busy core would do); ops_per_s may be limited by the load "
                "generator's CPUs. \"Paired\": the median (min–max) of the ratios of the "
                "two runs of each repeat (a repeat runs every target once, in turn): less "
                "exposed to a machine whose load drifts during the run. Runs with errors "
                "are left out.", "",
                "| scenario | metric | ringproxy | nginx | ringproxy / nginx | paired | goal "
                "| met |",
                "|---|---|---|---|---|---|---|---|", *rows, ""]

    def _bar_plot(self, key, per_scenario, targets):
        names = list(per_scenario)
        present = [t for t in targets if any(t in per_scenario[s] for s in names)]
        lines = ["# scenario " + " ".join(present)]
        for s in names:
            lines.append(s + " " + " ".join(fmt_raw(per_scenario[s].get(t)) for t in present))
        title = {"target_cpu_us_per_op": "proxy CPU per request/login/exchange (us)",
                 "target_cpu_s_per_gib": "proxy CPU per GiB relayed (s)",
                 "rss_per_conn": "proxy memory per idle connection (bytes)"}[key]
        cols = " , ".join(f"'{key}.dat' using {i + 2}:xtic(1) title '{t}'"
                          for i, t in enumerate(present))
        script = (f"set title '{title}'\nset style data histograms\n"
                  "set style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
                  "set yrange [0:*]\nset boxwidth 0.9\n"
                  f"plot {cols}\n")
        return self._plot(key.replace("target_", ""), script, {f"{key}.dat": "\n".join(lines) + "\n"})

    def sweep_tables(self, results, targets):
        out = []
        sweeps = sorted({(r["scenario"], r["variant"].split("=")[0]) for r in results
                         if r.get("variant")})
        for scenario, param in sweeps:
            # Runs with errors are left out, as in the scenario tables.
            rows = [r for r in results if r["scenario"] == scenario and
                    r.get("variant", "").startswith(param + "=") and clean(r)]
            if not rows:
                continue
            xs = sorted({float(r["variant"].split("=")[1]) for r in rows})
            tnames = [t for t in targets if any(r["target"] == t for r in rows)]
            ykey = "mb_per_s" if "mb_per_s" in SCENARIOS[scenario]["metrics"] else "ops_per_s"
            out += [f"### {scenario}: sweep over {'connections' if param == 'conc' else 'offered rate (ops/s)'}", ""]
            if param == "conc":
                out += ["| connections | " + " | ".join(f"{t} {ykey}" for t in tnames) + " |",
                        "|---" * (len(tnames) + 1) + "|"]
                data = {}
                for x in xs:
                    cells = []
                    for t in tnames:
                        m, _, _ = median_range([r for r in rows if r["target"] == t and
                                                float(r["variant"].split("=")[1]) == x], ykey)
                        cells.append(fmt(m))
                        data.setdefault(t, []).append((x, m))
                    out.append(f"| {x:g} | " + " | ".join(cells) + " |")
                script = (f"set title '{scenario}: throughput vs concurrency'\n"
                          f"set xlabel 'connections'\nset ylabel '{ykey}'\nset logscale x 2\n"
                          "set yrange [0:*]\nplot " + ", ".join(
                              f"'{scenario}-conc-{i}.dat' using 1:2 with linespoints title '{t}'"
                              for i, t in enumerate(tnames)) + "\n")
                png = self._plot(f"{scenario}-conc", script, {
                    f"{scenario}-conc-{i}.dat": "".join(f"{x} {fmt_raw(y)}\n" for x, y in data[t])
                    for i, t in enumerate(tnames)})
            else:
                out += ["| offered ops/s | " + " | ".join(f"{t} p50 / p99 / p99.9 (us)" for t in tnames) + " |",
                        "|---" * (len(tnames) + 1) + "|"]
                data = {}
                for x in xs:
                    cells = []
                    for t in tnames:
                        sel = [r for r in rows if r["target"] == t and
                               float(r["variant"].split("=")[1]) == x]
                        p50, _, _ = median_range(sel, "latency_us.p50")
                        p99, _, _ = median_range(sel, "latency_us.p99")
                        p999, _, _ = median_range(sel, "latency_us.p999")
                        cells.append(f"{fmt(p50)} / {fmt(p99)} / {fmt(p999)}")
                        data.setdefault(t, []).append((x, p50, p99))
                    out.append(f"| {x:g} | " + " | ".join(cells) + " |")
                plots = []
                for i, t in enumerate(tnames):
                    plots.append(f"'{scenario}-rate-{i}.dat' using 1:2 with linespoints title '{t} p50'")
                    plots.append(f"'{scenario}-rate-{i}.dat' using 1:3 with linespoints dashtype 2 title '{t} p99'")
                script = (f"set title '{scenario}: latency vs offered load (open loop)'\n"
                          "set xlabel 'offered ops/s'\nset ylabel 'latency (us)'\nset logscale y\n"
                          "plot " + ", ".join(plots) + "\n")
                png = self._plot(f"{scenario}-rate", script, {
                    f"{scenario}-rate-{i}.dat": "".join(f"{x} {fmt_raw(a)} {fmt_raw(b)}\n"
                                                        for x, a, b in data[t])
                    for i, t in enumerate(tnames)})
            out.append("")
            if png:
                out += [f"![{scenario} {param}]({png})", ""]
        return out

    def scaling_tables(self, results, targets):
        rows = [r for r in results if r.get("cores") and clean(r)]  # errored runs left out
        if not rows:
            return []
        out = ["## Scaling across cores", "",
               "Efficiency = rate at N cores / (N × rate at 1 core). Load generator and "
               "upstreams run on the remaining cores (`shared` when none remain).", ""]
        for scenario in sorted({r["scenario"] for r in rows}):
            ykey = "mb_per_s" if "mb_per_s" in SCENARIOS[scenario]["metrics"] else "ops_per_s"
            cores = sorted({r["cores"] for r in rows if r["scenario"] == scenario})
            tnames = [t for t in targets if any(r["target"] == t and r["scenario"] == scenario
                                                 for r in rows)]
            out += [f"### {scenario}", "", "| cores | " + " | ".join(
                f"{t} {ykey} (efficiency)" for t in tnames) + " | load CPUs |",
                    "|---" * (len(tnames) + 2) + "|"]
            data = {}
            for n in cores:
                cells, load = [], ""
                for t in tnames:
                    sel = [r for r in rows if r["scenario"] == scenario and r["target"] == t
                           and r["cores"] == n]
                    m, _, _ = median_range(sel, ykey)
                    base, _, _ = median_range([r for r in rows if r["scenario"] == scenario and
                                               r["target"] == t and r["cores"] == cores[0]], ykey)
                    eff = m / (n / cores[0] * base) if m and base else None
                    cells.append(f"{fmt(m)} ({eff:.2f})" if eff else fmt(m))
                    data.setdefault(t, []).append((n, m))
                    if sel:
                        load = sel[0].get("load_cpus", "")
                out.append(f"| {n} | " + " | ".join(cells) + f" | {load} |")
            out.append("")
            script = (f"set title '{scenario}: scaling'\nset xlabel 'proxy cores'\n"
                      f"set ylabel '{ykey}'\nset yrange [0:*]\nplot " + ", ".join(
                          f"'{scenario}-scale-{i}.dat' using 1:2 with linespoints title '{t}'"
                          for i, t in enumerate(tnames)) + "\n")
            png = self._plot(f"{scenario}-scale", script, {
                f"{scenario}-scale-{i}.dat": "".join(f"{x} {fmt_raw(y)}\n" for x, y in data[t])
                for i, t in enumerate(tnames)})
            if png:
                out += [f"![{scenario} scaling]({png})", ""]
        return out

    def write(self, results, targets):
        m = self.meta
        out = [f"# ringproxy benchmark report {self.stamp}", "",
               f"Machine: {m.get('cpu_model')} × {m.get('cpus')} CPUs, kernel {m.get('kernel')}. "
               f"Proxy CPUs {m.get('proxy_cpus')}; load generator and upstreams on CPUs "
               f"{m.get('load_cpus')}. {m.get('repeats')} runs per point, median (min–max). "
               f"Proxy CPU = user + system time of the proxy's process tree (/proc). "
               f"Anchors: {m.get('nginx')}; {m.get('haproxy')}.", "",
               "HTTP scenarios: ringproxy, nginx and HAProxy are all HTTP reverse proxies "
               "(each request parsed, upstream connections pooled to the same origin nginx; "
               "\"L4 relay\" marks results of runs from before ringproxy's HTTP proxy, when "
               "its TCP relay stood in). Mail scenarios: both are "
               "mail proxies (ringproxy's IMAP/POP3 listeners, nginx's mail module) routing "
               "each login through the same tools/lookupd; \"fast\" is the scripted "
               f"upstream (loadgen imap-serve / pop3-serve), else Dovecot {m.get('dovecot')}.", ""]
        out += self.goal_table(results)
        out += ["## Scenarios", ""] + self.scenario_tables(results, targets)
        sweeps = self.sweep_tables(results, targets)
        if sweeps:
            out += ["## Sweeps", ""] + sweeps
        out += self.scaling_tables(results, targets)
        if self.gnuplot is None:
            out += ["(gnuplot not found: no plots)", ""]
        path = os.path.join(self.out_dir, f"{self.stamp}.md")
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")
        return path


def fmt_raw(v):
    return "NaN" if v is None else f"{v:g}"
