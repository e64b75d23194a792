using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Sim;

/// <summary>
/// A machine under the sim engine with tasks that run scripted bodies: the library entry point for tests and for
/// the workload runner. Spawn tasks, run, then read the machine's counters, the sanitizer's violations and
/// who is stuck on what if the run stalled (an emulated deadlock or a lost wakeup).
/// </summary>
public sealed class SimHarness
{
    private readonly List<EmuTask> _tasks = new();
    private int _running;
    private Exception? _failure;

    public EmuMachine Machine { get; }
    public SimEngine Engine { get; }
    public IReadOnlyList<EmuTask> Tasks => _tasks;

    public SimHarness(MachineSpec spec, long seed = 1, bool sanitizer = true, Exploration? exploration = null)
    {
        Machine = new EmuMachine(spec, sanitizer);
        Engine = new SimEngine(seed, exploration);
    }

    /// <summary>A task on <paramref name="cpu"/> in <paramref name="mm"/> (a user thread).</summary>
    public EmuTask NewTask(int cpu, MmStruct? mm, string? name = null)
    {
        var t = new EmuTask(Machine, _tasks.Count, name ?? $"cpu{cpu}", cpu, Machine.Spec.NodeOfCpu(cpu), Engine) { Mm = mm };
        _tasks.Add(t);
        return t;
    }

    /// <summary>A kernel thread on <paramref name="node"/> (no TLB, no mm).</summary>
    public EmuTask NewKthread(int node, string name)
    {
        var t = new EmuTask(Machine, _tasks.Count, name, -1, node, Engine);
        _tasks.Add(t);
        return t;
    }

    /// <summary>Start <paramref name="body"/> on <paramref name="t"/> at emulated time <paramref name="at"/>.</summary>
    public void Spawn(EmuTask t, long at, Func<EmuTask, ValueTask> body)
    {
        _running++;
        Engine.Schedule(at, t.Id, () =>
        {
            if (at > t.Clock) t.Clock = at;
            _ = RunBody(t, body);
        });
    }

    private async Task RunBody(EmuTask t, Func<EmuTask, ValueTask> body)
    {
        try
        {
            await body(t);
        }
        catch (Exception e)
        {
            _failure ??= new InvalidOperationException($"{t} failed at {t.Clock} ns: {e.Message}", e);
        }
        finally
        {
            _running--;
            Finished?.Invoke(t);
        }
    }

    public event Action<EmuTask>? Finished;

    /// <summary>Tasks that had not finished when the engine ran out of events: each sleeps on something nobody will release.</summary>
    public List<string> Stalled { get; } = new();

    /// <summary>Run to completion. Throws if a task body threw. A stall is reported as a DEADLOCK violation.</summary>
    public SimHarness Run(Func<bool>? stop = null)
    {
        Engine.Run(() => _failure != null || (stop?.Invoke() ?? false));
        if (_failure != null)
            throw _failure;
        if (_running > 0 && Engine.Pending == 0)
        {
            foreach (var t in _tasks.Where(t => t.WaitingOn != null))
            {
                string what = t.WaitingOn is Locking.IWaitTarget w ? w.Describe() : t.WaitingOn!.ToString() ?? "?";
                var holders = new List<EmuTask>();
                (t.WaitingOn as Locking.IWaitTarget)?.AddHolders(holders);
                string msg = $"{t} sleeps forever on {what}" + (holders.Count > 0 ? $" held by {string.Join(", ", holders)}" : " (nobody holds it: lost wakeup)");
                Stalled.Add(msg);
                Machine.Sanitizer.Report(holders.Count > 0 ? "DEADLOCK" : "L1", t, null, null, msg);
            }
        }
        return this;
    }

    public long MaxClock => _tasks.Count == 0 ? 0 : _tasks.Max(t => t.Clock);

    /// <summary>Return every per-CPU list to its node and check that every frame is accounted for.</summary>
    public void CloseFrameAccounting()
    {
        foreach (var t in _tasks) t.Pcp.Drain(Machine);
        if (!Machine.Frames.Conserved && _tasks.Count > 0)
            Machine.Sanitizer.Report("FRAMES", _tasks[0], null, null, $"frames not conserved: {Machine.Frames}");
    }

    public IReadOnlyList<Violation> Violations => Machine.Sanitizer.Violations;
}
