using System.Runtime.CompilerServices;

namespace DistEmu.Kernel.Sched;

/// <summary>
/// The async method builder of the fault path's ValueTask methods. With many CPUs every engine yield suspends the
/// whole chain of frames down to the yield (do_user_addr_fault … set_pte), so a fault pays for each frame's box
/// several times. This builder keeps that price low: a frame that completes without suspending costs nothing; a
/// suspended frame's box comes from an unbounded per-thread free list (the runtime's pooling builder keeps one per
/// thread, so most boxes were allocated anew); the execution context is captured only when it flows (never under the
/// sim engine); and a completed frame runs its caller inline.
/// </summary>
public struct EmuAsyncMethodBuilder<T>
{
    private EmuAsyncBox<T>? _box;
    private Exception? _syncError;
    private T _syncResult;

    public static EmuAsyncMethodBuilder<T> Create() => default;

    public void Start<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine =>
        stateMachine.MoveNext();

    public void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    public ValueTask<T> Task =>
        _box is not null ? new ValueTask<T>(_box, _box.Version)
        : _syncError is not null ? ValueTask.FromException<T>(_syncError)
        : new ValueTask<T>(_syncResult);

    /// <summary>The same frame as a result-less ValueTask.</summary>
    internal ValueTask UntypedTask =>
        _box is not null ? new ValueTask(_box, _box.Version)
        : _syncError is not null ? ValueTask.FromException(_syncError)
        : default;

    public void SetResult(T result)
    {
        if (_box is null)
            _syncResult = result;
        else
            _box.SetResult(result);
    }

    public void SetException(Exception exception)
    {
        if (_box is null)
            _syncError = exception;
        else
            _box.SetException(exception);
    }

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion where TStateMachine : IAsyncStateMachine =>
        awaiter.OnCompleted(Box(ref stateMachine).MoveNextAction);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion where TStateMachine : IAsyncStateMachine =>
        awaiter.UnsafeOnCompleted(Box(ref stateMachine).MoveNextAction);

    /// <summary>
    /// The frame's box: on the first suspension, rent one and move the state machine into it (after recording the
    /// box in this builder, so the moved copy knows it); later suspensions run inside the box already.
    /// </summary>
    private EmuAsyncBox<T, TStateMachine> Box<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine
    {
        // A builder only ever serves one state machine type: no type check needed on the frame's later suspensions.
        if (_box is not null)
            return Unsafe.As<EmuAsyncBox<T, TStateMachine>>(_box);
        var box = EmuAsyncBox<T, TStateMachine>.Rent();
        box.CaptureContext();
        _box = box;
        box.StateMachine = stateMachine;
        return box;
    }
}

/// <summary>The builder for the fault path's result-less ValueTask methods (see <see cref="EmuAsyncMethodBuilder{T}"/>).</summary>
public struct EmuAsyncMethodBuilder
{
    private EmuAsyncMethodBuilder<bool> _inner;

    public static EmuAsyncMethodBuilder Create() => default;

    public void Start<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine =>
        stateMachine.MoveNext();

    public void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    public ValueTask Task => _inner.UntypedTask;

    public void SetResult() => _inner.SetResult(true);

    public void SetException(Exception exception) => _inner.SetException(exception);

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion where TStateMachine : IAsyncStateMachine =>
        _inner.AwaitOnCompleted(ref awaiter, ref stateMachine);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion where TStateMachine : IAsyncStateMachine =>
        _inner.AwaitUnsafeOnCompleted(ref awaiter, ref stateMachine);
}
