using DistEmu.Abstractions;
using DistEmu.Kernel;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sched;

namespace DistEmu.Grains.Support;

/// <summary>
/// A grain's share of the kernel: its own EmuMachine context (counters, lock statistics, sanitizer, folios), frames
/// and shootdowns through the grain ports, and one stand-in task per calling CPU (the kernel's `current`).
/// </summary>
public sealed class KernelHost
{
    private readonly Dictionary<int, EmuTask> _tasks = new();

    public RunConfig Config { get; }
    public MachineSpec Spec { get; }
    public EmuMachine Machine { get; }
    public GrainScheduler Scheduler { get; }
    public GrainFramePort Frames { get; }

    public KernelHost(RunConfig config, IGrainFactory grains)
    {
        Config = config;
        Spec = MachineJson.Deserialize(config.MachineJson);
        Machine = new EmuMachine(Spec, config.Sanitizer, ownsFrames: false);
        Scheduler = new GrainScheduler(config.QuantumNs > 0 ? node => grains.GetGrain<INodeTimeKeeperGrain>(GrainKeys.TimeKeeper(config.RunId, node)) : null, config.Delays,
            grains.GetGrain<IWaitGraphGrain>(config.RunId));
        Frames = new GrainFramePort(grains, config.RunId, Machine);
        Machine.FramePort = Frames;
        Machine.TlbPort = new GrainTlbPort(grains, config.RunId, Spec);
    }

    /// <summary>The stand-in for the calling CPU, its clock moved up to the caller's.</summary>
    public EmuTask Task(Caller c)
    {
        if (!_tasks.TryGetValue(c.Cpu, out var t))
            _tasks[c.Cpu] = t = new EmuTask(Machine, c.Cpu, $"cpu{c.Cpu}", c.Cpu, c.Node, Scheduler);
        if (c.Clock > t.Clock) t.Clock = c.Clock;
        t.Horizon = Scheduler.Bounded ? c.Horizon : long.MaxValue;
        return t;
    }

    public static Caller CallerOf(EmuTask t) => new() { Cpu = t.Cpu, Node = t.Node, Clock = t.Clock, Horizon = t.Horizon };

    public static async Task<KernelHost> For(IGrainFactory grains, string key)
    {
        var config = await grains.GetGrain<IMachineGrain>(GrainKeys.RunOf(key)).GetConfig();
        return new KernelHost(config, grains);
    }
}
