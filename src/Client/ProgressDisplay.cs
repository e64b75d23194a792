using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace DistEmu.Client;

/// <summary>
/// Where a piece of work has got: a status text (the plain lines'), the fraction done when the work is bounded (--ops,
/// --duration, a count), and a shorter text for the live line, which shares a terminal row with its bar.
/// </summary>
public sealed record ProgressSnapshot(string Text, double? Fraction = null, string? Compact = null)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>A run's status as distemu has always printed it, with the emulated time reached.</summary>
    public static ProgressSnapshot OfRun(long faults, long emulatedNs, TimeSpan elapsed, int? tasksDone, int? tasks, double? fraction)
    {
        double emulatedS = emulatedNs / 1e9;
        string done = tasksDone is { } d && tasks is { } t ? string.Create(Inv, $"{d}/{t} tasks done, ") : "";
        double hostRate = faults / Math.Max(elapsed.TotalSeconds, 1e-3);
        return new ProgressSnapshot(
            string.Create(Inv, $"{done}{faults:N0} faults, {(emulatedS > 0 ? faults / emulatedS : 0):N0} emulated faults/s, {emulatedNs / 1e6:N1} emulated ms, {hostRate:N0} host faults/s"),
            fraction,
            string.Create(Inv, $"{(tasksDone is { } cd && tasks is { } ct ? $"{cd}/{ct} done · " : "")}{faults:N0} faults · {emulatedNs / 1e6:N1} ms emulated · {hostRate:N0}/s"));
    }

    /// <summary>The larger of the fractions the bounds give: ops begun of all ops, host time of --duration.</summary>
    public static double? FractionDone(long? opsDone, long? opsTotal, TimeSpan elapsed, TimeSpan? duration)
    {
        double? byOps = opsDone is { } o && opsTotal is > 0 ? Math.Min(1.0, (double)o / opsTotal.Value) : null;
        double? byTime = duration is { } d && d > TimeSpan.Zero ? Math.Min(1.0, elapsed / d) : null;
        return byOps is null ? byTime : byTime is null ? byOps : Math.Max(byOps.Value, byTime.Value);
    }
}

/// <summary>
/// Shows a piece of work's progress: a live Spectre.Console line (status, bar, ETA) when distemu writes to a terminal,
/// else plain "progress: …" lines every 2 s (a redirected stdout, a log, a test's writer).
/// </summary>
public abstract class ProgressDisplay
{
    /// <summary>Live only on the process's own console, and only when it is an interactive terminal.</summary>
    public static ProgressDisplay For(TextWriter stdout) =>
        ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive
            ? new LiveProgress() : new PlainProgress(stdout);

    /// <summary>Runs <paramref name="work"/>, handing it the callback through which it reports (from any thread).</summary>
    public abstract T Show<T>(string title, Func<Action<ProgressSnapshot>, T> work);

    /// <summary>"ETA 1m 05s" from the fraction done after <paramref name="elapsed"/>.</summary>
    internal static string? Eta(double? fraction, TimeSpan elapsed)
    {
        if (fraction is not { } f || f <= 0 || f >= 1) return null;
        var left = TimeSpan.FromSeconds(elapsed.TotalSeconds * (1 - f) / f);
        return left.TotalMinutes >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"ETA {(int)left.TotalMinutes}m {left.Seconds:D2}s")
            : string.Create(CultureInfo.InvariantCulture, $"ETA {left.Seconds}s");
    }
}

/// <summary>One "progress: …" line every 2 s: what a log or a test reads.</summary>
internal sealed class PlainProgress(TextWriter stdout) : ProgressDisplay
{
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(2);

    public override T Show<T>(string title, Func<Action<ProgressSnapshot>, T> work)
    {
        var started = Stopwatch.StartNew();
        var sinceLine = Stopwatch.StartNew();
        var gate = new object();
        return work(snapshot =>
        {
            lock (gate)
            {
                if (sinceLine.Elapsed < Every) return;
                sinceLine.Restart();
                string eta = Eta(snapshot.Fraction, started.Elapsed) is { } e ? ", " + e : "";
                stdout.WriteLine($"progress: {snapshot.Text}{eta}");
                stdout.Flush();
            }
        });
    }
}

/// <summary>A live line on the terminal: spinner, status, bar, percentage and time left (when the work is bounded).</summary>
internal sealed class LiveProgress : ProgressDisplay
{
    private const double Scale = 1000;

    public override T Show<T>(string title, Func<Action<ProgressSnapshot>, T> work) =>
        AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new SpinnerColumn(), new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 16 }, new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask(Markup.Escape(title), autoStart: true, maxValue: Scale);
                task.IsIndeterminate = true;
                return work(snapshot =>
                {
                    task.Description = Markup.Escape(snapshot.Compact ?? snapshot.Text);
                    if (snapshot.Fraction is { } f)
                    {
                        task.IsIndeterminate = false;
                        task.Value = f * Scale;
                    }
                });
            });
}
