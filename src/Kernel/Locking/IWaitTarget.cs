using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Locking;

/// <summary>Something a task can wait on; its holders are the edges of the wait-for graph.</summary>
public interface IWaitTarget
{
    string Describe();
    void AddHolders(List<EmuTask> into);
}
