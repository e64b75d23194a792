using System.Globalization;
using DistEmu.Silo;

namespace DistEmu.Client;

/// <summary>The options of <c>distemu run</c>, parsed by hand (every value is checked; errors are <see cref="UsageException"/>).</summary>
public sealed class RunOptions
{
    public string Preset { get; private set; } = "small";
    public string? MachineFile { get; private set; }
    public string Workload { get; private set; } = "page-fault1";
    public Dictionary<string, string> Params { get; } = new(StringComparer.Ordinal);
    public string? Policy { get; private set; }
    public string Engine { get; private set; } = "orleans";
    public long Seed { get; private set; } = 1;
    public long Ops { get; private set; } = Cli.DefaultOps;
    public int? Tasks { get; private set; }
    public bool Sanitizer { get; private set; } = true;
    /// <summary>Sim engine: schedule exploration on (seeded preemption delays), as distemu explore runs each seed.</summary>
    public bool Explore { get; private set; }
    /// <summary>Sim engine: no run-ahead (every task waits its turn at every sync point); same results, slower.</summary>
    public bool Exact { get; private set; }
    /// <summary>Sim engine: historical bugs switched back in (BugSwitches.Names).</summary>
    public List<string> Bugs { get; } = [];
    public string? Out { get; private set; }
    public TimeSpan? Duration { get; private set; }
    public long Quantum { get; private set; }
    public string? TraceFile { get; private set; }
    public string? Otlp { get; private set; }
    public double TraceSample { get; private set; } = 1.0;
    public long? TraceContended { get; private set; }
    /// <summary>--trace-clock: "emulated" (default) or "host".</summary>
    public string TraceClock { get; private set; } = "emulated";
    public bool TraceClockGiven { get; private set; }
    public bool TraceOrleans { get; private set; }
    /// <summary>--trace-max-spans: the most spans written; whole traces past it are left out and counted (null: no budget).</summary>
    public long? TraceMaxSpans { get; private set; }
    /// <summary>A perf script trace to replay instead of a synthetic workload.</summary>
    public string? Trace { get; private set; }
    public double TimeScale { get; private set; } = 1.0;
    public bool AsFastAsPossible { get; private set; }
    public int Replicate { get; private set; } = 1;
    public bool SharedMm { get; private set; }
    public string? CpuMap { get; private set; }
    public bool Lenient { get; private set; }
    public bool EngineGiven { get; private set; }
    public string? DurationText { get; private set; }
    /// <summary>An existing cluster to run on (redis://HOST:PORT or postgres://…) instead of a silo in this process.</summary>
    public string? Cluster { get; private set; }
    public string? ClusterId { get; private set; }
    public string? ServiceId { get; private set; }

    /// <summary>"10s", "500ms", "2m", "1h" or plain seconds.</summary>
    public static TimeSpan ParseDuration(string v)
    {
        var units = new (string Suffix, double Seconds)[] { ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("", 1) };
        foreach (var (suffix, seconds) in units)
        {
            if (!v.EndsWith(suffix, StringComparison.Ordinal)) continue;
            if (double.TryParse(v[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n > 0)
                return TimeSpan.FromSeconds(n * seconds);
            break;
        }
        throw new UsageException($"--duration '{v}': expected a positive time such as 10s, 500ms or 2m");
    }

    public static RunOptions Parse(string[] args, string? trace = null)
    {
        var o = new RunOptions { Trace = trace };
        bool presetGiven = false;
        var r = new OptionReader(args, m => new UsageException(m));
        while (r.Next())
        {
            var a = r.Current;
            string Value() => r.Value();
            switch (a)
            {
                case "--preset": o.Preset = Value(); presetGiven = true; break;
                case "--machine": o.MachineFile = Value(); break;
                case "--workload": o.Workload = Value(); break;
                case "--param":
                    var (key, value) = r.KeyValue();
                    o.Params[key] = value;
                    break;
                case "--policy": o.Policy = Value(); break;
                case "--engine": o.Engine = Value(); o.EngineGiven = true; break;
                case "--trace": o.Trace = Value(); break;
                case "--time-scale":
                    var ts = Value();
                    o.TimeScale = double.TryParse(ts, NumberStyles.Float, CultureInfo.InvariantCulture, out var tsv) && tsv >= 0
                        ? tsv : throw new UsageException($"--time-scale '{ts}': expected a number >= 0");
                    break;
                case "--as-fast-as-possible": o.AsFastAsPossible = true; break;
                case "--replicate":
                    var rp = r.Long();
                    o.Replicate = rp is >= 1 and <= 65536 ? (int)rp : throw new UsageException($"--replicate {rp}: must be in 1..65536");
                    break;
                case "--shared-mm": o.SharedMm = true; break;
                case "--cpu-map": o.CpuMap = Value(); break;
                case "--lenient": o.Lenient = true; break;
                case "--seed": o.Seed = r.Long(); break;
                case "--ops": o.Ops = r.Long(); break;
                case "--tasks":
                    var t = r.Long();
                    o.Tasks = t is >= int.MinValue and <= int.MaxValue ? (int)t : throw new UsageException($"--tasks {t}: out of range");
                    break;
                case "--sanitizer":
                    o.Sanitizer = Value() switch
                    {
                        "on" => true,
                        "off" => false,
                        var v => throw new UsageException($"--sanitizer '{v}': expected on or off"),
                    };
                    break;
                case "--out": o.Out = Value(); break;
                case "--explore": o.Explore = true; break;
                case "--exact": o.Exact = true; break;
                case "--bug":
                    var bug = Cli.ParseBug(Value());
                    if (!o.Bugs.Contains(bug)) o.Bugs.Add(bug);
                    break;
                case "--cluster": o.Cluster = Value(); break;
                case "--cluster-id": o.ClusterId = Value(); break;
                case "--service-id": o.ServiceId = Value(); break;
                case "--trace-file": o.TraceFile = Value(); break;
                case "--otlp": o.Otlp = Value(); break;
                case "--trace-sample":
                    var sr = Value();
                    o.TraceSample = double.TryParse(sr, NumberStyles.Float, CultureInfo.InvariantCulture, out var srv) && srv is >= 0 and <= 1
                        ? srv : throw new UsageException($"--trace-sample '{sr}': expected a ratio in 0..1");
                    break;
                case "--trace-clock":
                    var clock = Value();
                    o.TraceClock = clock is "emulated" or "host" ? clock : throw new UsageException($"--trace-clock '{clock}': expected emulated or host");
                    o.TraceClockGiven = true;
                    break;
                case "--trace-orleans": o.TraceOrleans = true; break;
                case "--trace-max-spans":
                    var ms = r.Long();
                    o.TraceMaxSpans = ms >= 1 ? ms : throw new UsageException($"--trace-max-spans {ms}: must be >= 1");
                    break;
                case "--trace-contended":
                    var tc = r.Long();
                    o.TraceContended = tc >= 0 ? tc : throw new UsageException($"--trace-contended {tc}: must be >= 0");
                    break;
                case "--quantum":
                    o.Quantum = r.Long();
                    if (o.Quantum < 0) throw new UsageException($"--quantum {o.Quantum}: must be >= 0");
                    break;
                case "--duration":
                    o.DurationText = Value();
                    o.Duration = ParseDuration(o.DurationText);
                    break;
                default: throw new UsageException($"run: unknown option '{r.Raw}' (see distemu run --help)");
            }
        }
        if (presetGiven && o.MachineFile != null)
            throw new UsageException("--preset and --machine are exclusive; in a machine file use 'base: PRESET'");
        return o;
    }
}
